using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// libtorch's <c>softplus(x)</c> with its defaults (beta 1, threshold 20), the very kernel TorchSharp's
/// <c>nn.functional.softplus</c> calls (its vectorized exp differs from <c>exp().log1p()</c> in the last bit, so the
/// kernel is called, not rewritten). TorchSharp creates the beta and threshold Scalars inside that call, where the GC
/// may free them mid-operation; here they are <see cref="Scalars"/>' held ones, passed to the same native entry point.
/// </summary>
internal static unsafe class Softplus
{
    private static readonly Lazy<Native> Entry = new(Native.Find);

    public static Tensor Apply(Tensor x)
    {
        Native native = Entry.Value;
        Scalar beta = Scalars.Of(1.0), threshold = Scalars.Of(20.0);
        IntPtr result = native.Softplus(x.Handle, native.HandleOf(beta), native.HandleOf(threshold));
        GC.KeepAlive(x);
        if (result == IntPtr.Zero) CheckForErrors();
        return Tensor.UnsafeCreateTensor(result);
    }

    /// <summary>THSTensor_softplus(tensor, beta, threshold) in libLibTorchSharp, and the getter of Scalar's native handle.</summary>
    private sealed class Native(delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr> softplus, Func<Scalar, IntPtr> handleOf)
    {
        public delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr> Softplus { get; } = softplus;

        public Func<Scalar, IntPtr> HandleOf { get; } = handleOf;

        public static Native Find()
        {
            TorchRuntime.EnsureLoaded();
            IntPtr library = NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null);
            var softplus = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr>)NativeLibrary.GetExport(library, "THSTensor_softplus");
            MethodInfo getter = typeof(Scalar).GetProperty("Handle", BindingFlags.Instance | BindingFlags.NonPublic)?.GetMethod
                ?? throw new MissingMemberException(typeof(Scalar).FullName, "Handle");
            return new Native(softplus, getter.CreateDelegate<Func<Scalar, IntPtr>>());
        }
    }
}
