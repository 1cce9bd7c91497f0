using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The AVX2 path (machines without AVX-512): the same steps as <see cref="Blocks512{TSource}"/>, with a block held in
/// two <see cref="Vector256{T}"/> halves and portable narrowing instead of VPMOVQB/VPMOVDB.
/// </summary>
internal static unsafe partial class Nvfp4Kernel
{
    private static uint Blocks256<TSource>(byte* src, nint firstBlock, nint blockCount, float weightScale2, byte* packed, byte* scales)
        where TSource : struct, IWeightSource
    {
        uint* blockAmax = stackalloc uint[16];
        float* divisors = stackalloc float[16];
        byte* scaleBytes = stackalloc byte[16];
        var t = Vector256.Create(E2M1.MaxValue * weightScale2);
        var w2 = Vector256.Create(weightScale2);
        var absMask = Vector256.Create(0x7FFF_FFFFu);
        Vector256<uint> seen = Vector256<uint>.Zero;
        ref byte origin = ref *src;
        nint end = firstBlock + blockCount;
        for (nint group = firstBlock; group < end; group += 16)
        {
            int n = (int)Math.Min(16, end - group);
            for (int j = 0; j < n; j++)
            {
                nint at = (group + j) * 16;
                Vector256<uint> abs = Vector256.Max(
                    TSource.Load8(ref origin, at).AsUInt32() & absMask,
                    TSource.Load8(ref origin, at + 8).AsUInt32() & absMask);
                blockAmax[j] = HorizontalMax(abs);
            }

            for (int j = n; j < 16; j++)
            {
                blockAmax[j] = 0;
            }

            Vector256<uint> amaxLow = Vector256.Load(blockAmax), amaxHigh = Vector256.Load(blockAmax + 8);
            seen = Vector256.Max(seen, Vector256.Max(amaxLow, amaxHigh));
            Vector256<uint> codesLow = BlockScales(amaxLow.AsSingle(), t, out Vector256<float> valuesLow);
            Vector256<uint> codesHigh = BlockScales(amaxHigh.AsSingle(), t, out Vector256<float> valuesHigh);
            (valuesLow * w2).Store(divisors);
            (valuesHigh * w2).Store(divisors + 8);
            Vector256<ushort> codes16 = Vector256.Narrow(codesLow, codesHigh);
            Vector128.Narrow(codes16.GetLower(), codes16.GetUpper()).Store(scaleBytes);
            for (int j = 0; j < n; j++)
            {
                scales[group + j] = scaleBytes[j];
            }

            for (int j = 0; j < n; j++)
            {
                nint at = (group + j) * 16;
                var divisor = Vector256.Create(divisors[j]);
                Unsafe.WriteUnaligned(
                    packed + (group + j) * 8,
                    PackedBlock(E2M1Codes(TSource.Load8(ref origin, at) / divisor).AsUInt64(), E2M1Codes(TSource.Load8(ref origin, at + 8) / divisor).AsUInt64()));
            }
        }

        return HorizontalMax(seen);
    }

    /// <summary>The 8 packed bytes of a block from the codes of its two halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong PackedBlock(Vector256<ulong> low, Vector256<ulong> high)
    {
        // As in the 512-bit path: fold code 2k+1 into bits 4-7 of ulong lane k, then keep each lane's low byte.
        Vector256<uint> pairs = Vector256.Narrow(low | (low >> 28), high | (high >> 28));
        Vector128<ushort> pairs16 = Vector128.Narrow(pairs.GetLower(), pairs.GetUpper());
        return Vector128.Narrow(pairs16, pairs16).AsUInt64().ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HorizontalMax(Vector256<uint> v)
    {
        Vector128<uint> m = Vector128.Max(v.GetLower(), v.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2u, 3u, 0u, 1u)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1u, 0u, 3u, 2u)));
        return m.ToScalar();
    }

    /// <summary>8 block scales at once; see the 512-bit overload for the reasoning.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> BlockScales(Vector256<float> blockAmax, Vector256<float> t, out Vector256<float> values)
    {
        Vector256<float> s = blockAmax / t;
        s = Vector256.ConditionalSelect(Vector256.Equals(s, Vector256<float>.Zero), Vector256<float>.One, s);
        s = Vector256.Min(Vector256.Max(s, Vector256.Create(E4M3.MinSubnormal)), Vector256.Create(E4M3.MaxValue));

        Vector256<uint> bits = s.AsUInt32();
        Vector256<uint> rounded = bits + Vector256.Create(0x7FFFFu) + ((bits >> 20) & Vector256<uint>.One);
        Vector256<uint> normalCode = (rounded - Vector256.Create(120u << 23)) >> 20;
        Vector256<float> normalValue = (rounded & Vector256.Create(0xFFF0_0000u)).AsSingle();

        Vector256<float> shifted = s + Vector256.Create(16384f);
        Vector256<uint> subnormalCode = shifted.AsUInt32() - Vector256.Create(141u << 23);
        Vector256<float> subnormalValue = shifted - Vector256.Create(16384f);

        Vector256<uint> isSubnormal = Vector256.LessThan(bits, Vector256.Create(121u << 23));
        values = Vector256.ConditionalSelect(isSubnormal.AsSingle(), subnormalValue, normalValue);
        return Vector256.ConditionalSelect(isSubnormal, subnormalCode, normalCode);
    }

    /// <summary>8 E2M1 codes; see the 512-bit overload. The clamp to 6 is a compare-and-select so that NaN → 6 portably.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> E2M1Codes(Vector256<float> x)
    {
        Vector256<float> magnitude = (x.AsUInt32() & Vector256.Create(0x7FFF_FFFFu)).AsSingle();
        var six = Vector256.Create(E2M1.MaxValue);
        magnitude = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(magnitude, six), magnitude, six);
        Vector256<uint> bits = magnitude.AsUInt32();
        Vector256<uint> normal = ((bits + Vector256.Create(0x1F_FFFFu) + ((bits >> 22) & Vector256<uint>.One)) >> 22)
            - Vector256.Create(252u);
        Vector256<uint> subnormal = (magnitude + Vector256.Create(4194304f)).AsUInt32() - Vector256.Create(0x4A80_0000u);
        Vector256<uint> code = Vector256.ConditionalSelect(
            Vector256.LessThan(magnitude, Vector256<float>.One).AsUInt32(), subnormal, normal);
        return code | (Vector256.LessThan(x, Vector256<float>.Zero).AsUInt32() & Vector256.Create(8u));
    }
}
