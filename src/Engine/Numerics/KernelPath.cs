using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Which instruction set a kernel uses. <see cref="Auto"/> picks the widest the machine accelerates; tests force each
/// path to show that all of them give the same bytes.
/// </summary>
internal enum KernelPath
{
    Auto,
    Vector512,
    Vector256,
    Scalar,
}

internal static class KernelPaths
{
    /// <summary>The 512-bit path also uses a few AVX-512F instructions directly (narrowing stores).</summary>
    public static bool Vector512Available => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    public static bool Vector256Available => Vector256.IsHardwareAccelerated;

    /// <summary>Resolves <see cref="KernelPath.Auto"/> and refuses a forced path the machine cannot run.</summary>
    public static KernelPath Resolve(KernelPath requested) => requested switch
    {
        KernelPath.Auto => Vector512Available ? KernelPath.Vector512 : Vector256Available ? KernelPath.Vector256 : KernelPath.Scalar,
        KernelPath.Vector512 when !Vector512Available => throw new PlatformNotSupportedException("Vector512 (AVX-512F) is not accelerated on this machine."),
        KernelPath.Vector256 when !Vector256Available => throw new PlatformNotSupportedException("Vector256 is not accelerated on this machine."),
        _ => requested,
    };

    /// <summary>The paths this machine can run, widest first (for tests and the benchmark).</summary>
    public static IReadOnlyList<KernelPath> Available()
    {
        var paths = new List<KernelPath>();
        if (Vector512Available)
        {
            paths.Add(KernelPath.Vector512);
        }

        if (Vector256Available)
        {
            paths.Add(KernelPath.Vector256);
        }

        paths.Add(KernelPath.Scalar);
        return paths;
    }
}
