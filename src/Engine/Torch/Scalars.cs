using System.Collections.Concurrent;
using TorchSharp;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// The one way numbers reach libtorch. A <see cref="Scalar"/> owns a native handle that only its finalizer or Dispose
/// frees, and TorchSharp passes that handle to native code without keeping the managed object alive: a Scalar created
/// inside a call (an implicit <c>x * 0.5</c>, the hidden alpha of <c>add(Tensor)</c>, <c>square()</c>'s exponent) can be
/// collected and finalized by a GC on another thread while libtorch still reads it ("INTERNAL ASSERT FAILED at
/// c10/core/Scalar.h"). The build bans every TorchSharp member that creates one (build/BannedSymbols.txt, RS0030), so
/// numbers come from here, where the caller holds a reference for the whole native call:
/// <list type="bullet">
/// <item><see cref="Of(double)"/>, <see cref="Of(long)"/>, <see cref="One"/>: constants (epsilons, exponents, alphas),
/// cached per value and rooted for the life of the process. Cheap, but the cache grows with each distinct value.</item>
/// <item><see cref="Temporary"/>: a value computed per call (a learning rate, a bias correction); declare it with
/// <c>using</c> so it stays reachable until after the native call and is freed right then.</item>
/// </list>
/// </summary>
public static class Scalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Doubles = new();
    private static readonly ConcurrentDictionary<long, Scalar> Integers = new();

    /// <summary>The integer 1: the alpha to pass to <c>add</c>, <c>add_</c>, <c>sub</c> and <c>index_add_</c>.</summary>
    public static Scalar One => Of(1L);

    public static Scalar Of(double value) => Doubles.GetOrAdd(value, Create);

    public static Scalar Of(long value) => Integers.GetOrAdd(value, Create);

    /// <summary>A Scalar for one computed value, owned by the caller: <c>using Scalar s = Scalars.Temporary(v);</c>.</summary>
    public static Scalar Temporary(double value) => Create(value);

    // The only place a Scalar is made: every caller above keeps the result reachable across the native call.
#pragma warning disable RS0030
    private static Scalar Create(double value) => value.ToScalar();

    private static Scalar Create(long value) => value.ToScalar();
#pragma warning restore RS0030
}
