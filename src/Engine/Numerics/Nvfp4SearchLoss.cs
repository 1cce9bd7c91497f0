namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The block loss every NVFP4 block-scale search minimises, defined here once in plain scalar fp32 (every C# float
/// operation is one IEEE binary32 operation; <see cref="MathF.FusedMultiplyAdd"/> is one fused operation). The SIMD
/// kernels compute exactly these operations in exactly this order, so their losses are bit-identical.
/// <para>
/// For a block of 16 weights <c>w</c> (widened exactly to fp32) and a candidate E4M3 block scale <c>v</c>, with
/// <c>d = fl32(v × weight_scale_2)</c> (the divisor of spec step 4, which the export uses too):
/// <c>x_i = fl32(|w_i| / d)</c>; <c>q_i</c> = the E2M1 magnitude <see cref="E2M1.Encode"/> rounds <c>x_i</c> to;
/// <c>e_i = fl32(|w_i| − fl32(q_i × d))</c>, the error of the exported value <c>E2M1 × v × weight_scale_2</c>
/// (|w| and |dequantized| because E2M1 keeps the sign, so the signed error is <c>sign(w_i)·e_i</c>).
/// </para>
/// <list type="bullet">
/// <item>MSE: <c>s_i = fl32(e_i²)</c>, summed by halving folds: <c>a_k = s_k + s_(k+8)</c> (k &lt; 8),
/// <c>b_k = a_k + a_(k+4)</c>, <c>c_k = b_k + b_(k+2)</c>, loss = <c>c_0 + c_1</c>.</item>
/// <item>Local Hessian: <c>dw_i = sign(w_i)·e_i</c>; <c>t_i = H_i0·dw_0</c>, then <c>t_i = fma(H_ij, dw_j, t_i)</c> for
/// j = 1..15; <c>p_i = fl32(dw_i × t_i)</c>, summed by the same halving folds: <c>dwᵀ H dw</c>.</item>
/// </list>
/// </summary>
internal static class Nvfp4SearchLoss
{
    /// <summary>The loss of one block (16 floats) at divisor <paramref name="divisor"/>; <paramref name="hessian"/> is the block's 16×16 row-major H, or empty for MSE.</summary>
    public static float Block(ReadOnlySpan<float> weights, float divisor, ReadOnlySpan<float> hessian)
    {
        Span<float> terms = stackalloc float[Nvfp4.BlockSize];
        Span<float> errors = stackalloc float[Nvfp4.BlockSize];
        for (int i = 0; i < Nvfp4.BlockSize; i++)
        {
            float magnitude = MathF.Abs(weights[i]);
            float dequantized = E2M1.Decode(E2M1.Encode(magnitude / divisor)) * divisor;
            float error = magnitude - dequantized;
            errors[i] = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(error) ^ (BitConverter.SingleToUInt32Bits(weights[i]) & 0x8000_0000u));
        }

        for (int i = 0; i < Nvfp4.BlockSize; i++)
        {
            if (hessian.IsEmpty)
            {
                terms[i] = errors[i] * errors[i];
                continue;
            }

            float t = hessian[i * Nvfp4.BlockSize] * errors[0];
            for (int j = 1; j < Nvfp4.BlockSize; j++)
            {
                t = MathF.FusedMultiplyAdd(hessian[i * Nvfp4.BlockSize + j], errors[j], t);
            }

            terms[i] = errors[i] * t;
        }

        return HalvingSum(terms);
    }

    /// <summary>The fixed summation order of 16 terms: fold the upper half onto the lower half until one is left.</summary>
    public static float HalvingSum(Span<float> terms)
    {
        for (int half = Nvfp4.BlockSize / 2; half >= 1; half /= 2)
        {
            for (int k = 0; k < half; k++)
            {
                terms[k] += terms[k + half];
            }
        }

        return terms[0];
    }

    /// <summary>
    /// The winner among candidate losses: a strict less-than scan from +∞, so the first of equal minima wins
    /// (<c>torch.argmin</c>'s rule and ModelOpt's sweep kernels'); a NaN loss never wins, and if nothing is below +∞ the first candidate does.
    /// </summary>
    public static int FirstMinimum(ReadOnlySpan<float> losses)
    {
        int best = 0;
        float bestLoss = float.PositiveInfinity;
        for (int c = 0; c < losses.Length; c++)
        {
            if (losses[c] < bestLoss)
            {
                bestLoss = losses[c];
                best = c;
            }
        }

        return best;
    }
}
