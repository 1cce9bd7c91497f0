using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ModelOptPS.Engine.Numerics;

/// <summary>The AVX-512 path: one block of 16 weights is exactly one <see cref="Vector512{T}"/> of fp32.</summary>
internal static unsafe partial class Nvfp4Kernel
{
    /// <summary>
    /// Works on groups of 16 blocks (256 weights). First the group is widened to fp32 into a 1 KiB stack buffer while the
    /// 16 block amaxes are reduced together into one vector (<see cref="BlockMaxima"/>); then the 16 block scales are
    /// computed at once (division, zero→1, clamp, E4M3 cast, decode); then each block is divided by its own divisor,
    /// rounded to E2M1 and packed, reading the widened weights back from the buffer (L1).
    /// </summary>
    private static uint Blocks512<TSource>(byte* src, nint firstBlock, nint blockCount, float weightScale2, byte* packed, byte* scales)
        where TSource : struct, IWeightSource
    {
        float* weights = stackalloc float[16 * 16];
        float* divisors = stackalloc float[16];
        var t = Vector512.Create(E2M1.MaxValue * weightScale2); // fl32(6·wsf2), formed once in scalar fp32
        var w2 = Vector512.Create(weightScale2);
        Vector512<uint> seen = Vector512<uint>.Zero;
        Vector512<uint> cellsLow = E2M1CellsLow, cellsHigh = E2M1CellsHigh;
        ref byte origin = ref *src;
        nint end = firstBlock + blockCount;
        for (nint group = firstBlock; group < end; group += 16)
        {
            int n = (int)Math.Min(16, end - group);

            // Block amaxes as fp32 bit patterns: |w| is the pattern with the sign cleared, and integer max of such
            // patterns is the float max (and puts NaN/Inf above every finite value, which `seen` reports).
            Vector512<uint> amax;
            if (n == 16)
            {
                amax = WidenGroup<TSource>(ref origin, group * 16, weights);
            }
            else
            {
                for (int j = 0; j < 16; j++)
                {
                    // Unused blocks of the last group are zero blocks, computed but never stored.
                    (j < n ? TSource.Load16(ref origin, (group + j) * 16) : Vector512<float>.Zero).Store(weights + j * 16);
                }

                amax = BlockMaxima(
                    Abs(weights, 0), Abs(weights, 1), Abs(weights, 2), Abs(weights, 3), Abs(weights, 4), Abs(weights, 5), Abs(weights, 6), Abs(weights, 7),
                    Abs(weights, 8), Abs(weights, 9), Abs(weights, 10), Abs(weights, 11), Abs(weights, 12), Abs(weights, 13), Abs(weights, 14), Abs(weights, 15));
            }

            seen = Vector512.Max(seen, amax);
            Vector512<uint> scaleCodes = BlockScales(amax.AsSingle(), t, out Vector512<float> scaleValues);
            (scaleValues * w2).Store(divisors); // step 4's divisor fl32(fp32(scale)·wsf2), per block
            if (n == 16)
            {
                Avx512F.ConvertToVector128Byte(scaleCodes).Store(scales + group);
            }
            else
            {
                for (int j = 0; j < n; j++)
                {
                    scales[group + j] = (byte)scaleCodes.GetElement(j);
                }
            }

            // Two blocks per iteration (16 output bytes, one store), pointers bumped rather than indexed.
            float* w = weights;
            float* d = divisors;
            byte* output = packed + group * 8;
            for (int j = 0; j + 1 < n; j += 2, w += 32, d += 2, output += 16)
            {
                Vector128<ulong> first = PackedBlock(Vector512.Load(w) / Vector512.Create(d[0]), cellsLow, cellsHigh);
                Vector128<ulong> second = PackedBlock(Vector512.Load(w + 16) / Vector512.Create(d[1]), cellsLow, cellsHigh);
                Sse2.UnpackLow(first, second).Store((ulong*)output);
            }

            if ((n & 1) != 0)
            {
                Unsafe.WriteUnaligned(output, PackedBlock(Vector512.Load(w) / Vector512.Create(d[0]), cellsLow, cellsHigh).ToScalar());
            }
        }

        return HorizontalMax(seen);
    }

    /// <summary>The 8 packed bytes of one block of scaled values (in the low 64 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> PackedBlock(Vector512<float> scaled, Vector512<uint> cellsLow, Vector512<uint> cellsHigh)
    {
        // Lane k of the ulong view holds code 2k (low half) and code 2k+1 (high half); folding the high half down by
        // 28 bits puts code 2k+1 in bits 4-7, and VPMOVQB keeps the low byte of each lane: 8 packed bytes.
        Vector512<ulong> codes = E2M1Codes(scaled, cellsLow, cellsHigh).AsUInt64();
        return Avx512F.ConvertToVector128Byte(codes | (codes >> 28)).AsUInt64();
    }

    /// <summary>
    /// Widens one full group of 16 blocks into <paramref name="weights"/> and returns the blocks' maxima, reducing the
    /// widened registers directly (no reload).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> WidenGroup<TSource>(ref byte origin, nint first, float* weights)
        where TSource : struct, IWeightSource
    {
        return BlockMaxima(
            Widen<TSource>(ref origin, first, weights, 0), Widen<TSource>(ref origin, first, weights, 1),
            Widen<TSource>(ref origin, first, weights, 2), Widen<TSource>(ref origin, first, weights, 3),
            Widen<TSource>(ref origin, first, weights, 4), Widen<TSource>(ref origin, first, weights, 5),
            Widen<TSource>(ref origin, first, weights, 6), Widen<TSource>(ref origin, first, weights, 7),
            Widen<TSource>(ref origin, first, weights, 8), Widen<TSource>(ref origin, first, weights, 9),
            Widen<TSource>(ref origin, first, weights, 10), Widen<TSource>(ref origin, first, weights, 11),
            Widen<TSource>(ref origin, first, weights, 12), Widen<TSource>(ref origin, first, weights, 13),
            Widen<TSource>(ref origin, first, weights, 14), Widen<TSource>(ref origin, first, weights, 15));
    }

    /// <summary>Block <paramref name="j"/> of the group: widened, stored for the second pass, returned as |w| bit patterns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Widen<TSource>(ref byte origin, nint first, float* weights, int j)
        where TSource : struct, IWeightSource
    {
        Vector512<float> block = TSource.Load16(ref origin, first + j * 16);
        block.Store(weights + j * 16);
        return block.AsUInt32() & Vector512.Create(0x7FFF_FFFFu);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Abs(float* weights, int j) => Vector512.Load((uint*)weights + j * 16) & Vector512.Create(0x7FFF_FFFFu);

    /// <summary>
    /// max of each of 16 vectors (|w| bit patterns of 16 blocks), lane k = block k. Instead of 16 horizontal
    /// reductions, a transposing tree: each level merges two vectors with two VPERMT2D and one max, halving the lanes
    /// per block (16 → 8 → 4 → 2 → 1) while doubling the blocks per vector. 45 operations for 16 blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> BlockMaxima(
        Vector512<uint> b0, Vector512<uint> b1, Vector512<uint> b2, Vector512<uint> b3, Vector512<uint> b4, Vector512<uint> b5,
        Vector512<uint> b6, Vector512<uint> b7, Vector512<uint> b8, Vector512<uint> b9, Vector512<uint> b10, Vector512<uint> b11,
        Vector512<uint> b12, Vector512<uint> b13, Vector512<uint> b14, Vector512<uint> b15)
    {
        // Level 1: [a0..a7 | b0..b7] and [a8..a15 | b8..b15].
        var l1a = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        var l1b = Vector512.Create(8u, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
        Vector512<uint> Merge(Vector512<uint> x, Vector512<uint> y, Vector512<uint> first, Vector512<uint> second) =>
            Vector512.Max(Avx512F.PermuteVar16x32x2(x, first, y), Avx512F.PermuteVar16x32x2(x, second, y));

        Vector512<uint> m01 = Merge(b0, b1, l1a, l1b), m23 = Merge(b2, b3, l1a, l1b);
        Vector512<uint> m45 = Merge(b4, b5, l1a, l1b), m67 = Merge(b6, b7, l1a, l1b);
        Vector512<uint> m89 = Merge(b8, b9, l1a, l1b), m1011 = Merge(b10, b11, l1a, l1b);
        Vector512<uint> m1213 = Merge(b12, b13, l1a, l1b), m1415 = Merge(b14, b15, l1a, l1b);

        // Level 2: 8-lane groups → 4-lane groups.
        var l2a = Vector512.Create(0u, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
        var l2b = Vector512.Create(4u, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
        Vector512<uint> m0to3 = Merge(m01, m23, l2a, l2b), m4to7 = Merge(m45, m67, l2a, l2b);
        Vector512<uint> m8to11 = Merge(m89, m1011, l2a, l2b), m12to15 = Merge(m1213, m1415, l2a, l2b);

        // Level 3: 4-lane groups → 2-lane groups.
        var l3a = Vector512.Create(0u, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
        var l3b = Vector512.Create(2u, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
        Vector512<uint> m0to7 = Merge(m0to3, m4to7, l3a, l3b), m8to15 = Merge(m8to11, m12to15, l3a, l3b);

        // Level 4: 2-lane groups → one lane per block.
        var l4a = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var l4b = Vector512.Create(1u, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        return Merge(m0to7, m8to15, l4a, l4b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HorizontalMax(Vector512<uint> v)
    {
        Vector256<uint> m256 = Vector256.Max(v.GetLower(), v.GetUpper());
        Vector128<uint> m = Vector128.Max(m256.GetLower(), m256.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2u, 3u, 0u, 1u)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1u, 0u, 3u, 2u)));
        return m.ToScalar();
    }

    /// <summary>
    /// Step 3 on 16 block amaxes at once: E4M3 codes (in the low byte of each lane) and their exact fp32 values.
    /// Same operations as <see cref="Nvfp4Reference.BlockScale"/> and <see cref="E4M3.FromFloat"/>, restricted to the
    /// clamped range [2^-9, 448] where neither NaN nor sign handling is needed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<uint> BlockScales(Vector512<float> blockAmax, Vector512<float> t, out Vector512<float> values)
    {
        Vector512<float> s = blockAmax / t; // VDIVPS: a correctly rounded fp32 division per lane
        s = Vector512.ConditionalSelect(Vector512.Equals(s, Vector512<float>.Zero), Vector512<float>.One, s);
        s = Vector512.Min(Vector512.Max(s, Vector512.Create(E4M3.MinSubnormal)), Vector512.Create(E4M3.MaxValue));

        // Normal results (s ≥ 2^-6): round the mantissa to 3 bits, half to even, on the bit pattern; the rounded
        // pattern with its low 20 bits cleared is the exact value, and rebiased and shifted down it is the code.
        Vector512<uint> bits = s.AsUInt32();
        Vector512<uint> rounded = bits + Vector512.Create(0x7FFFFu) + ((bits >> 20) & Vector512<uint>.One);
        Vector512<uint> normalCode = (rounded - Vector512.Create(120u << 23)) >> 20;
        Vector512<float> normalValue = (rounded & Vector512.Create(0xFFF0_0000u)).AsSingle();

        // Subnormal results (s < 2^-6): adding 2^14 makes the FPU round to a multiple of 2^-9 (half to even); the sum's
        // low bits are the code, and subtracting 2^14 again gives the exact value.
        Vector512<float> shifted = s + Vector512.Create(16384f);
        Vector512<uint> subnormalCode = shifted.AsUInt32() - Vector512.Create(141u << 23);
        Vector512<float> subnormalValue = shifted - Vector512.Create(16384f);

        Vector512<uint> isSubnormal = Vector512.LessThan(bits, Vector512.Create(121u << 23));
        values = Vector512.ConditionalSelect(isSubnormal.AsSingle(), subnormalValue, normalValue);
        return Vector512.ConditionalSelect(isSubnormal, subnormalCode, normalCode);
    }

    /// <summary>
    /// Step 5 on 16 scaled values: E2M1 codes per lane, equal to <see cref="E2M1.Encode"/> for every input (bits 0-3;
    /// bits 16 and up may hold table garbage, which packing drops).
    /// <para>
    /// Every E2M1 bound (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5) has at most two significant bits after the leading one, so
    /// it starts a cell of the grid "exponent + top two mantissa bits" of |x|: the code is constant inside each cell,
    /// and only a value exactly on a cell start can differ (the ties that round down: 0.25, 1.25, 2.5, 5). So: clamp the
    /// bit pattern of |x| to [0.25, 6] (values below 0.25 become exactly 0.25, a tie that gives 0; NaN's pattern is above
    /// 6's, giving 0x7 like searchsorted), look the cell up in a 32-entry table (VPERMT2D uses the low 5 bits of the
    /// index, and the five binades 0.25..8 occupy 20 distinct slots), and for lanes exactly on a cell start take the
    /// tie code stored in the entry's upper half. Sign bit only for x &lt; 0 (so not -0).
    /// </para>
    /// </summary>
    internal static Vector512<uint> E2M1Codes(Vector512<float> x) => E2M1Codes(x, E2M1CellsLow, E2M1CellsHigh);

    /// <summary>As <see cref="E2M1Codes(Vector512{float})"/>, with the cell table held in registers by the caller's loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> E2M1Codes(Vector512<float> x, Vector512<uint> cellsLow, Vector512<uint> cellsHigh)
    {
        Vector512<uint> magnitude = x.AsUInt32() & Vector512.Create(0x7FFF_FFFFu);
        magnitude = Vector512.Min(Vector512.Max(magnitude, Vector512.Create(0x3E80_0000u)), Vector512.Create(0x40C0_0000u));
        Vector512<uint> entry = Avx512F.PermuteVar16x32x2(cellsLow, magnitude >> 21, cellsHigh);
        Vector512<uint> onCellStart = Vector512.Equals(magnitude & Vector512.Create(0x1F_FFFFu), Vector512<uint>.Zero);
        Vector512<uint> code = Vector512.ConditionalSelect(onCellStart, entry >> 16, entry);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero).AsUInt32(), code | Vector512.Create(8u), code);
    }

    /// <summary>
    /// The E2M1 cell table, slot = (exponent·4 + top two mantissa bits) mod 32 of |x|; low half: the code of values
    /// inside the cell, high half: the code of the cell's start value itself. Slots 20-23: [0.25, 0.5); 24-27: [0.5, 1);
    /// 28-31: [1, 2); 0-3: [2, 4); 4-7: [4, 8) (only 4..6 reachable); 8-19 unused.
    /// </summary>
    /// Entries are <c>inside | onStart &lt;&lt; 16</c>.
    internal static Vector512<uint> E2M1CellsLow => Vector512.Create(
        0x4_0004u, 0x4_0005u, 0x5_0005u, 0x6_0006u,   // 2, 2.5 (tie down to 2), 3, 3.5 (tie up to 4)
        0x6_0006u, 0x6_0007u, 0x7_0007u, 0x7_0007u,   // 4, 5 (tie down to 4), 6, 7
        0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);

    internal static Vector512<uint> E2M1CellsHigh => Vector512.Create(
        0u, 0u, 0u, 0u,
        0x0_0001u, 0x1_0001u, 0x1_0001u, 0x1_0001u,   // 0.25 (tie down to 0), 0.3125, 0.375, 0.4375
        0x1_0001u, 0x1_0001u, 0x2_0002u, 0x2_0002u,   // 0.5, 0.625, 0.75 (tie up to 1), 0.875
        0x2_0002u, 0x2_0003u, 0x3_0003u, 0x4_0004u);  // 1, 1.25 (tie down to 1), 1.5, 1.75 (tie up to 2)
}
