using System.Collections.Concurrent;
using TorchSharp;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// Numbers for torch operations, as native Scalars that live for the whole process. TorchSharp turns every number it
/// is given (including the implicit alpha of <c>add(Tensor)</c> and <c>sub(Tensor)</c>) into a native Scalar that only
/// its finalizer frees, and passes the handle to native code without keeping the managed object alive: a garbage
/// collection on another thread during the call can free the scalar mid-operation (seen here as "INTERNAL ASSERT
/// FAILED at c10/core/Scalar.h" in long runs that allocate). Scalars taken from here are rooted and never finalized,
/// so hot paths use them instead of bare numbers.
/// </summary>
public static class Scalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Doubles = new();
    private static readonly ConcurrentDictionary<long, Scalar> Integers = new();

    /// <summary>The integer 1: the alpha to pass to <c>add</c>, <c>add_</c>, <c>sub</c> and <c>index_add_</c>.</summary>
    public static Scalar One => Of(1L);

    public static Scalar Of(double value) => Doubles.GetOrAdd(value, v => v.ToScalar());

    public static Scalar Of(long value) => Integers.GetOrAdd(value, v => v.ToScalar());
}
