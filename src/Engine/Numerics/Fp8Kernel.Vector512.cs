using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ModelOptPS.Engine.Numerics;

/// <summary>The AVX-512 path: 16 weights per vector, 32 per iteration, VPMOVDB narrowing stores.</summary>
internal static unsafe partial class Fp8Kernel
{
    private static Fp8KernelStats Elements512<TSource, TRound>(byte* src, byte* dst, nint start, nint count, float divisor)
        where TSource : struct, IWeightSource
        where TRound : struct, ISourceRounding
    {
        var d = Vector512.Create(divisor);
        var absMask = Vector512.Create(0x7FFF_FFFFu);
        Vector512<uint> maxAbs = Vector512<uint>.Zero, maxQuotient = Vector512<uint>.Zero;
        ref byte origin = ref *src;
        nint i = start, end = start + count;
        for (; i <= end - 32; i += 32)
        {
            Vector512<float> w0 = TSource.Load16(ref origin, i), w1 = TSource.Load16(ref origin, i + 16);
            Vector512<float> q0 = TRound.Round(w0 / d), q1 = TRound.Round(w1 / d); // VDIVPS: correctly rounded per lane
            maxAbs = Vector512.Max(maxAbs, Vector512.Max(w0.AsUInt32() & absMask, w1.AsUInt32() & absMask));
            maxQuotient = Vector512.Max(maxQuotient, Vector512.Max(q0.AsUInt32() & absMask, q1.AsUInt32() & absMask));
            Avx512F.ConvertToVector128Byte(E4M3Codes(q0)).Store(dst + i);
            Avx512F.ConvertToVector128Byte(E4M3Codes(q1)).Store(dst + i + 16);
        }

        var seen = new Fp8KernelStats(HorizontalMax(maxAbs), HorizontalMax(maxQuotient));
        return ElementsScalar<TSource, TRound>(src, dst, i, end - i, divisor, seen);
    }

    /// <summary>
    /// <see cref="E4M3.FromFloat"/> on 16 lanes, the same integer steps (code in the low byte of each lane): NaN/Inf and
    /// |x| ≥ 480 → 0x7F; below 2^-6 add 2^14 so the FPU rounds to the 2^-9 subnormal step; otherwise rebias and round
    /// the mantissa to 3 bits half to even on the pattern. Sign bit on top.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<uint> E4M3Codes(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        Vector512<uint> sign = bits & Vector512.Create(0x8000_0000u);
        Vector512<uint> magnitude = bits ^ sign;
        Vector512<uint> normal = (magnitude + Vector512.Create(unchecked((uint)((7 - 127) << 23)) + 0x7FFFFu) + ((magnitude >> 20) & Vector512<uint>.One)) >> 20;
        Vector512<uint> subnormal = (magnitude.AsSingle() + Vector512.Create(16384f)).AsUInt32() - Vector512.Create(141u << 23);
        Vector512<uint> code = Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(121u << 23)), subnormal, normal);
        code = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(1087u << 20)), Vector512.Create((uint)E4M3.NaN), code);
        return code | (sign >> 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HorizontalMax(Vector512<uint> v) => HorizontalMax(Vector256.Max(v.GetLower(), v.GetUpper()));
}
