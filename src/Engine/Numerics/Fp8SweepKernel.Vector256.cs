using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The AVX2 sweep: a block in two <see cref="Vector256{T}"/> halves (weights 0-7 and 8-15), the same operations as the
/// 512-bit path; the halves are added first (the first halving fold), then each candidate's 8 lanes are folded.
/// </summary>
internal static unsafe partial class Fp8SweepKernel
{
    private static void Blocks256<TSource, TChooser>(byte* src, float* columns, BlockRange work, nint first, nint count, byte* scales)
        where TSource : struct, IWeightSource
        where TChooser : struct, IBlockScaleChooser
    {
        const int n = Nvfp4.BlockSize;
        float* losses = stackalloc float[Fp8ScaleCandidates.PaddedCount];
        float* errors = stackalloc float[n];
        Vector256<float>* quotients = stackalloc Vector256<float>[16];
        SweepTables tables = work.Tables;
        var values = Vector256.Create(0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f);
        fixed (float* divisors = tables.Divisors, powers = tables.InversePowersOfTwo, mantissaDivisors = tables.MantissaDivisors)
        fixed (int* mantissas = tables.MantissaIndices)
        {
            ref byte origin = ref *src;
            for (nint b = first; b < first + count; b++)
            {
                Vector256<float> low = TSource.Load8(ref origin, b * n), high = TSource.Load8(ref origin, b * n + 8);
                var signMask = Vector256.Create(0x8000_0000u);
                Vector256<uint> signLow = low.AsUInt32() & signMask, signHigh = high.AsUInt32() & signMask;
                Vector256<float> magnitudeLow = (low.AsUInt32() ^ signLow).AsSingle(), magnitudeHigh = (high.AsUInt32() ^ signHigh).AsSingle();
                for (int k = 0; k < 8; k++)
                {
                    var divisor = Vector256.Create(mantissaDivisors[k]);
                    quotients[2 * k] = magnitudeLow / divisor;
                    quotients[2 * k + 1] = magnitudeHigh / divisor;
                }

                for (int c = 0; c < Fp8ScaleCandidates.Count; c++)
                {
                    var power = Vector256.Create(powers[c]);
                    var d = Vector256.Create(divisors[c]);
                    Vector256<float> errorLow = magnitudeLow - E2M1Magnitude(quotients[2 * mantissas[c]] * power, values) * d;
                    Vector256<float> errorHigh = magnitudeHigh - E2M1Magnitude(quotients[2 * mantissas[c] + 1] * power, values) * d;
                    Vector256<float> termLow, termHigh;
                    if (columns == null)
                    {
                        termLow = errorLow * errorLow;
                        termHigh = errorHigh * errorHigh;
                    }
                    else
                    {
                        Vector256<float> dwLow = (errorLow.AsUInt32() ^ signLow).AsSingle(), dwHigh = (errorHigh.AsUInt32() ^ signHigh).AsSingle();
                        dwLow.Store(errors);
                        dwHigh.Store(errors + 8);
                        float* h = columns + (b % work.BlocksPerRow) * n * n;
                        var e0 = Vector256.Create(errors[0]);
                        Vector256<float> tLow = Vector256.Load(h) * e0, tHigh = Vector256.Load(h + 8) * e0;
                        for (int col = 1; col < n; col++)
                        {
                            var e = Vector256.Create(errors[col]);
                            tLow = Vector256.FusedMultiplyAdd(Vector256.Load(h + col * n), e, tLow);
                            tHigh = Vector256.FusedMultiplyAdd(Vector256.Load(h + col * n + 8), e, tHigh);
                        }

                        termLow = dwLow * tLow;
                        termHigh = dwHigh * tHigh;
                    }

                    losses[c] = FoldSum(termLow + termHigh);
                }

                float blockAmax = Vector256.Max(magnitudeLow, magnitudeHigh) is var m
                    ? MathF.Max(MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3])), MathF.Max(MathF.Max(m[4], m[5]), MathF.Max(m[6], m[7])))
                    : 0f;
                scales[b] = TChooser.Choose(new ReadOnlySpan<float>(losses, Fp8ScaleCandidates.Count), blockAmax, work.WeightScale2);
            }
        }
    }

    /// <summary>The E2M1 magnitude of a non-negative x: <see cref="Nvfp4Kernel.E2M1Codes(Vector256{float})"/> (no sign bit for x ≥ 0) looked up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> E2M1Magnitude(Vector256<float> x, Vector256<float> values) =>
        Vector256.Shuffle(values, Nvfp4Kernel.E2M1Codes(x).AsInt32());

    /// <summary>Lanes k and k+4, then k and k+2, then 0 and 1: the last three halving folds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FoldSum(Vector256<float> a)
    {
        Vector128<float> b = a.GetLower() + a.GetUpper();
        Vector128<float> c = b + Vector128.Shuffle(b, Vector128.Create(2, 3, 0, 1));
        return c.ToScalar() + c.GetElement(1);
    }
}
