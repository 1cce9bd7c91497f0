using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The AVX-512 sweep: one block is one <see cref="Vector512{T}"/> (lane i = weight i). The 8 mantissa quotients
/// <c>|w|/fl32(M·wsf2)</c> are formed once per block; each candidate then costs one exact power-of-two multiply, the E2M1
/// rounding by table lookup, and the error terms. For MSE the 16 lanes of 16 candidates are summed at once by a transposing
/// tree whose levels are exactly the halving folds of <see cref="Nvfp4SearchLoss.HalvingSum"/>; the local-Hessian loss
/// turns the layout around (<see cref="WeightedLosses"/>).
/// </summary>
internal static unsafe partial class Fp8SweepKernel
{
    private static void Blocks512<TSource, TChooser>(byte* src, float* hessian, BlockRange work, nint first, nint count, byte* scales)
        where TSource : struct, IWeightSource
        where TChooser : struct, IBlockScaleChooser
    {
        const int n = Nvfp4.BlockSize;
        float* losses = stackalloc float[Fp8ScaleCandidates.PaddedCount];
        Vector512<float>* quotients = stackalloc Vector512<float>[8];
        float* magnitudes = stackalloc float[n];
        uint* signs = stackalloc uint[n];
        Vector512<float>* weightQuotients = stackalloc Vector512<float>[n], weightErrors = stackalloc Vector512<float>[n];
        var buffers = new WeightedBuffers(magnitudes, signs, weightQuotients, weightErrors);
        SweepTables tables = work.Tables;
        fixed (float* divisors = tables.Divisors, powers = tables.InversePowersOfTwo, mantissaDivisors = tables.MantissaDivisors)
        fixed (int* mantissas = tables.MantissaIndices)
        {
            var block = new Block512
            {
                Lookup = new Lookup512(Nvfp4Kernel.E2M1CellsLow, Nvfp4Kernel.E2M1CellsHigh, Vector512.Create(E2M1.Values)),
                Quotients = quotients, Mantissas = mantissas, Powers = powers, Divisors = divisors,
                MantissaDivisors = Vector512.Create(Vector256.Load(mantissaDivisors), Vector256.Load(mantissaDivisors)),
            };
            ref byte origin = ref *src;
            for (nint b = first; b < first + count; b++)
            {
                Vector512<float> w = TSource.Load16(ref origin, b * n);
                block.Sign = w.AsUInt32() & Vector512.Create(0x8000_0000u);
                block.Magnitude = (w.AsUInt32() ^ block.Sign).AsSingle();
                for (int k = 0; k < 8; k++)
                {
                    quotients[k] = block.Magnitude / Vector512.Create(mantissaDivisors[k]);
                }

                if (hessian == null)
                {
                    for (int c = 0; c < Fp8ScaleCandidates.PaddedCount; c += n)
                    {
                        SumTree(
                            block.Squared(c), block.Squared(c + 1), block.Squared(c + 2), block.Squared(c + 3),
                            block.Squared(c + 4), block.Squared(c + 5), block.Squared(c + 6), block.Squared(c + 7),
                            block.Squared(c + 8), block.Squared(c + 9), block.Squared(c + 10), block.Squared(c + 11),
                            block.Squared(c + 12), block.Squared(c + 13), block.Squared(c + 14), block.Squared(c + 15)).Store(losses + c);
                    }
                }
                else
                {
                    WeightedLosses(block, hessian + (b % work.BlocksPerRow) * n * n, buffers, losses);
                }

                scales[b] = TChooser.Choose(new ReadOnlySpan<float>(losses, Fp8ScaleCandidates.Count), HorizontalMax(block.Magnitude), work.WeightScale2);
            }
        }
    }

    /// <summary>One block's state across the candidate loop, and the per-candidate terms of <see cref="Nvfp4SearchLoss"/>.</summary>
    private struct Block512
    {
        public Lookup512 Lookup;
        public Vector512<float>* Quotients;
        public int* Mantissas;
        public float* Powers;
        public float* Divisors;
        public Vector512<float> MantissaDivisors;
        public Vector512<float> Magnitude;
        public Vector512<uint> Sign;

        /// <summary><c>s_i = e_i²</c> for candidate <paramref name="c"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly Vector512<float> Squared(int c)
        {
            Vector512<float> e = Error(c);
            return e * e;
        }

        /// <summary><c>e_i = |w_i| − fl32(q_i·d)</c> for candidate <paramref name="c"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly Vector512<float> Error(int c)
        {
            Vector512<float> x = Quotients[Mantissas[c]] * Vector512.Create(Powers[c]);
            return Magnitude - E2M1Magnitude(x, Lookup) * Vector512.Create(Divisors[c]);
        }
    }

    /// <summary>Stack scratch of the local-Hessian loop: |w_i|, sign bits, per-weight mantissa quotients, dw per weight.</summary>
    private readonly struct WeightedBuffers(float* magnitudes, uint* signs, Vector512<float>* quotients, Vector512<float>* errors)
    {
        public float* Magnitudes { get; } = magnitudes;
        public uint* Signs { get; } = signs;
        public Vector512<float>* Quotients { get; } = quotients;
        public Vector512<float>* Errors { get; } = errors;
    }

    /// <summary>
    /// Local-Hessian losses of all candidates, 16 candidates per vector (lane l of group g = candidate 16g + l), so that
    /// <c>t_i = Σ_j H_ij·dw_j</c> is a broadcast of the scalar H_ij times a vector: the 16 accumulators stay in registers and
    /// no lane shuffles are needed. Same operations and order as <see cref="Nvfp4SearchLoss"/>: t_i starts at
    /// <c>fl32(H_i0·dw_0)</c> (a fused multiply-add onto −0 is that product exactly), then fma over j = 1..15; the
    /// halving folds over i are plain vector adds.
    /// </summary>
    private static void WeightedLosses(in Block512 block, float* h, in WeightedBuffers buffers, float* losses)
    {
        const int n = Nvfp4.BlockSize;
        float* magnitudes = buffers.Magnitudes;
        uint* signs = buffers.Signs;
        Vector512<float>* q = buffers.Quotients, dw = buffers.Errors;
        block.Magnitude.Store(magnitudes);
        block.Sign.Store(signs);
        for (int i = 0; i < n; i++)
        {
            q[i] = Vector512.Create(magnitudes[i]) / block.MantissaDivisors; // lane k (and k + 8): |w_i| / fl32(M_k·wsf2)
        }

        for (int g = 0; g < Fp8ScaleCandidates.PaddedCount; g += n)
        {
            Vector512<int> mantissas = Vector512.Load(block.Mantissas + g);
            Vector512<float> powers = Vector512.Load(block.Powers + g), divisors = Vector512.Load(block.Divisors + g);
            for (int i = 0; i < n; i++)
            {
                Vector512<float> x = Avx512F.PermuteVar16x32(q[i], mantissas) * powers;
                Vector512<float> e = Vector512.Create(magnitudes[i]) - E2M1Magnitude(x, block.Lookup) * divisors;
                dw[i] = (e.AsUInt32() ^ Vector512.Create(signs[i])).AsSingle();
            }

            Vector512<float> t0 = Vector512.Create(-0f), t1 = t0, t2 = t0, t3 = t0, t4 = t0, t5 = t0, t6 = t0, t7 = t0;
            Vector512<float> t8 = t0, t9 = t0, t10 = t0, t11 = t0, t12 = t0, t13 = t0, t14 = t0, t15 = t0;
            for (int j = 0; j < n; j++)
            {
                Vector512<float> d = dw[j];
                float* column = h + j; // H_ij at column[16·i]
                t0 = Vector512.FusedMultiplyAdd(Vector512.Create(column[0]), d, t0);
                t1 = Vector512.FusedMultiplyAdd(Vector512.Create(column[16]), d, t1);
                t2 = Vector512.FusedMultiplyAdd(Vector512.Create(column[32]), d, t2);
                t3 = Vector512.FusedMultiplyAdd(Vector512.Create(column[48]), d, t3);
                t4 = Vector512.FusedMultiplyAdd(Vector512.Create(column[64]), d, t4);
                t5 = Vector512.FusedMultiplyAdd(Vector512.Create(column[80]), d, t5);
                t6 = Vector512.FusedMultiplyAdd(Vector512.Create(column[96]), d, t6);
                t7 = Vector512.FusedMultiplyAdd(Vector512.Create(column[112]), d, t7);
                t8 = Vector512.FusedMultiplyAdd(Vector512.Create(column[128]), d, t8);
                t9 = Vector512.FusedMultiplyAdd(Vector512.Create(column[144]), d, t9);
                t10 = Vector512.FusedMultiplyAdd(Vector512.Create(column[160]), d, t10);
                t11 = Vector512.FusedMultiplyAdd(Vector512.Create(column[176]), d, t11);
                t12 = Vector512.FusedMultiplyAdd(Vector512.Create(column[192]), d, t12);
                t13 = Vector512.FusedMultiplyAdd(Vector512.Create(column[208]), d, t13);
                t14 = Vector512.FusedMultiplyAdd(Vector512.Create(column[224]), d, t14);
                t15 = Vector512.FusedMultiplyAdd(Vector512.Create(column[240]), d, t15);
            }

            // p_i = dw_i·t_i, then the halving folds: (k, k+8), (k, k+4), (k, k+2), (0, 1).
            Vector512<float> a0 = dw[0] * t0 + dw[8] * t8, a1 = dw[1] * t1 + dw[9] * t9, a2 = dw[2] * t2 + dw[10] * t10, a3 = dw[3] * t3 + dw[11] * t11;
            Vector512<float> a4 = dw[4] * t4 + dw[12] * t12, a5 = dw[5] * t5 + dw[13] * t13, a6 = dw[6] * t6 + dw[14] * t14, a7 = dw[7] * t7 + dw[15] * t15;
            Vector512<float> b0 = a0 + a4, b1 = a1 + a5, b2 = a2 + a6, b3 = a3 + a7;
            ((b0 + b2) + (b1 + b3)).Store(losses + g);
        }
    }

    /// <summary>The E2M1 tables held in registers across the candidate loop.</summary>
    private readonly record struct Lookup512(Vector512<uint> CellsLow, Vector512<uint> CellsHigh, Vector512<float> Values);

    /// <summary>
    /// The E2M1 magnitude <see cref="E2M1.Encode"/> rounds a non-negative <paramref name="x"/> to, by the cell table of
    /// <see cref="Nvfp4Kernel.E2M1Codes(Vector512{float})"/> (the sign step dropped: x ≥ 0) and a value lookup.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> E2M1Magnitude(Vector512<float> x, in Lookup512 lookup)
    {
        Vector512<uint> bits = Vector512.Min(Vector512.Max(x.AsUInt32(), Vector512.Create(0x3E80_0000u)), Vector512.Create(0x40C0_0000u));
        Vector512<uint> entry = Avx512F.PermuteVar16x32x2(lookup.CellsLow, bits >> 21, lookup.CellsHigh);
        Vector512<uint> onCellStart = Vector512.Equals(bits & Vector512.Create(0x1F_FFFFu), Vector512<uint>.Zero);
        Vector512<uint> code = Vector512.ConditionalSelect(onCellStart, entry >> 16, entry);
        return Avx512F.PermuteVar16x32(lookup.Values, code.AsInt32());
    }

    /// <summary>
    /// Lane j = the sum of the 16 lanes of <c>tj</c>, in the order of <see cref="Nvfp4SearchLoss.HalvingSum"/>: each level
    /// adds lane k and lane k + half within every group (two VPERMT2PS and one add), as the max tree of the quantizer does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SumTree(
        Vector512<float> t0, Vector512<float> t1, Vector512<float> t2, Vector512<float> t3, Vector512<float> t4, Vector512<float> t5,
        Vector512<float> t6, Vector512<float> t7, Vector512<float> t8, Vector512<float> t9, Vector512<float> t10, Vector512<float> t11,
        Vector512<float> t12, Vector512<float> t13, Vector512<float> t14, Vector512<float> t15)
    {
        static Vector512<float> Merge(Vector512<float> x, Vector512<float> y, Vector512<uint> first, Vector512<uint> second) =>
            Avx512F.PermuteVar16x32x2(x, first.AsInt32(), y) + Avx512F.PermuteVar16x32x2(x, second.AsInt32(), y);

        var l1a = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        var l1b = Vector512.Create(8u, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
        Vector512<float> m01 = Merge(t0, t1, l1a, l1b), m23 = Merge(t2, t3, l1a, l1b);
        Vector512<float> m45 = Merge(t4, t5, l1a, l1b), m67 = Merge(t6, t7, l1a, l1b);
        Vector512<float> m89 = Merge(t8, t9, l1a, l1b), m1011 = Merge(t10, t11, l1a, l1b);
        Vector512<float> m1213 = Merge(t12, t13, l1a, l1b), m1415 = Merge(t14, t15, l1a, l1b);

        var l2a = Vector512.Create(0u, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
        var l2b = Vector512.Create(4u, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
        Vector512<float> m0to3 = Merge(m01, m23, l2a, l2b), m4to7 = Merge(m45, m67, l2a, l2b);
        Vector512<float> m8to11 = Merge(m89, m1011, l2a, l2b), m12to15 = Merge(m1213, m1415, l2a, l2b);

        var l3a = Vector512.Create(0u, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
        var l3b = Vector512.Create(2u, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
        Vector512<float> m0to7 = Merge(m0to3, m4to7, l3a, l3b), m8to15 = Merge(m8to11, m12to15, l3a, l3b);

        var l4a = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var l4b = Vector512.Create(1u, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        return Merge(m0to7, m8to15, l4a, l4b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector512<float> magnitude)
    {
        Vector256<float> m256 = Vector256.Max(magnitude.GetLower(), magnitude.GetUpper());
        Vector128<float> m = Vector128.Max(m256.GetLower(), m256.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }
}
