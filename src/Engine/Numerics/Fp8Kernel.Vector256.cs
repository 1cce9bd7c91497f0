using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelOptPS.Engine.Numerics;

/// <summary>The AVX2 path: the steps of <see cref="Elements512{TSource, TRound}"/> on two 8-lane halves, portable narrowing.</summary>
internal static unsafe partial class Fp8Kernel
{
    private static Fp8KernelStats Elements256<TSource, TRound>(byte* src, byte* dst, nint start, nint count, float divisor)
        where TSource : struct, IWeightSource
        where TRound : struct, ISourceRounding
    {
        var d = Vector256.Create(divisor);
        var absMask = Vector256.Create(0x7FFF_FFFFu);
        Vector256<uint> maxAbs = Vector256<uint>.Zero, maxQuotient = Vector256<uint>.Zero;
        ref byte origin = ref *src;
        nint i = start, end = start + count;
        for (; i <= end - 16; i += 16)
        {
            Vector256<float> w0 = TSource.Load8(ref origin, i), w1 = TSource.Load8(ref origin, i + 8);
            Vector256<float> q0 = TRound.Round(w0 / d), q1 = TRound.Round(w1 / d);
            maxAbs = Vector256.Max(maxAbs, Vector256.Max(w0.AsUInt32() & absMask, w1.AsUInt32() & absMask));
            maxQuotient = Vector256.Max(maxQuotient, Vector256.Max(q0.AsUInt32() & absMask, q1.AsUInt32() & absMask));

            // Every lane holds a value ≤ 0xFF, so the narrowing keeps it whole.
            Vector256<ushort> codes = Vector256.Narrow(E4M3Codes(q0), E4M3Codes(q1));
            Vector128.Narrow(codes.GetLower(), codes.GetUpper()).Store(dst + i);
        }

        var seen = new Fp8KernelStats(HorizontalMax(maxAbs), HorizontalMax(maxQuotient));
        return ElementsScalar<TSource, TRound>(src, dst, i, end - i, divisor, seen);
    }

    /// <summary><see cref="E4M3.FromFloat"/> on 8 lanes; see the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> E4M3Codes(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        Vector256<uint> sign = bits & Vector256.Create(0x8000_0000u);
        Vector256<uint> magnitude = bits ^ sign;
        Vector256<uint> normal = (magnitude + Vector256.Create(unchecked((uint)((7 - 127) << 23)) + 0x7FFFFu) + ((magnitude >> 20) & Vector256<uint>.One)) >> 20;
        Vector256<uint> subnormal = (magnitude.AsSingle() + Vector256.Create(16384f)).AsUInt32() - Vector256.Create(141u << 23);
        Vector256<uint> code = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(121u << 23)), subnormal, normal);
        code = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(1087u << 20)), Vector256.Create((uint)E4M3.NaN), code);
        return code | (sign >> 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HorizontalMax(Vector256<uint> v)
    {
        Vector128<uint> m = Vector128.Max(v.GetLower(), v.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2u, 3u, 0u, 1u)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1u, 0u, 3u, 2u)));
        return m.ToScalar();
    }
}
