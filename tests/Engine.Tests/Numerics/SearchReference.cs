namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// An independent, deliberately plain scalar implementation of the NVFP4 block-scale searches, written from the loss
/// definition (Nvfp4SearchLoss's comment) without any engine helper: its own E4M3 decoding, its own E2M1 rounding
/// (ModelOpt's <c>fp4_round_magnitude</c> comparisons), one true fp32 division per weight and candidate, fp32 throughout.
/// </summary>
internal static class SearchReference
{
    public const int Candidates = 126;

    /// <summary>The value of E4M3 byte 0x01..0x7E: subnormal m·2^-9, normal (1 + m/8)·2^(e-7).</summary>
    public static float CandidateValue(byte code)
    {
        int exponent = code >> 3, mantissa = code & 7;
        return exponent == 0 ? (float)(mantissa * Math.Pow(2, -9)) : (float)((1 + mantissa / 8.0) * Math.Pow(2, exponent - 7));
    }

    /// <summary>ModelOpt's <c>fp4_round_magnitude</c>: ties at 0.25, 1.25, 2.5, 5 go down, at 0.75, 1.75, 3.5 up.</summary>
    public static float RoundE2M1(float x) =>
        x <= 0.25f ? 0f : x < 0.75f ? 0.5f : x <= 1.25f ? 1f : x < 1.75f ? 1.5f : x <= 2.5f ? 2f : x < 3.5f ? 3f : x <= 5f ? 4f : 6f;

    /// <summary>The loss of block <paramref name="w"/> (16 values) under scale byte <paramref name="code"/>; <paramref name="h"/>: 256 row-major floats or null.</summary>
    public static float Loss(float[] w, byte code, float weightScale2, float[]? h)
    {
        float d = CandidateValue(code) * weightScale2;
        var dw = new float[16];
        for (int i = 0; i < 16; i++)
        {
            float magnitude = Math.Abs(w[i]);
            float error = magnitude - RoundE2M1(magnitude / d) * d;
            dw[i] = w[i] < 0 || (w[i] == 0 && float.IsNegative(w[i])) ? -error : error;
        }

        var terms = new float[16];
        for (int i = 0; i < 16; i++)
        {
            if (h == null)
            {
                terms[i] = dw[i] * dw[i];
            }
            else
            {
                float t = h[i * 16] * dw[0];
                for (int j = 1; j < 16; j++)
                {
                    t = MathF.FusedMultiplyAdd(h[i * 16 + j], dw[j], t);
                }

                terms[i] = dw[i] * t;
            }
        }

        // Halving folds: 16 → 8 → 4 → 2 → 1.
        for (int half = 8; half >= 1; half /= 2)
        {
            for (int k = 0; k < half; k++)
            {
                terms[k] = terms[k] + terms[k + half];
            }
        }

        return terms[0];
    }

    /// <summary>The FP8 sweep for one block: the first candidate byte with the least loss.</summary>
    public static byte Sweep(float[] w, float weightScale2, float[]? h)
    {
        byte best = 1;
        float bestLoss = float.PositiveInfinity;
        for (int code = 1; code <= Candidates; code++)
        {
            float loss = Loss(w, (byte)code, weightScale2, h);
            if (loss < bestLoss)
            {
                bestLoss = loss;
                best = (byte)code;
            }
        }

        return best;
    }

    /// <summary>The dynamic block scale rule (spec step 3) on an amax.</summary>
    public static byte DynamicScale(float amax, float weightScale2)
    {
        float s = amax / (6f * weightScale2);
        s = s == 0f ? 1f : Math.Clamp(s, 1f / 512f, 448f);
        byte best = 1;
        for (int code = 1; code <= Candidates; code++)
        {
            // Round to nearest, ties to the even code (even mantissa bit), among all positive finite E4M3 values.
            float distance = Math.Abs(CandidateValue((byte)code) - s), bestDistance = Math.Abs(CandidateValue(best) - s);
            if (distance < bestDistance || (distance == bestDistance && (code & 1) == 0))
            {
                best = (byte)code;
            }
        }

        return best;
    }

    /// <summary>torch.linspace(0.25, 4.0, 39) in fp32 by ATen's formula with one rounding per element (a fused multiply-add, here exact in double).</summary>
    public static float[] Multipliers()
    {
        float step = (4f - 0.25f) / 38;
        return Enumerable.Range(0, 39).Select(k => k < 19 ? (float)(0.25 + (double)step * k) : (float)(4.0 - (double)step * (38 - k))).ToArray();
    }

    /// <summary>The plain MSE multiplier search for one block.</summary>
    public static byte MultiplierSearch(float[] w, float weightScale2, float[]? h)
    {
        float amax = w.Max(Math.Abs);
        byte best = 0;
        float bestLoss = float.PositiveInfinity;
        foreach (float m in Multipliers())
        {
            byte code = DynamicScale(amax * m, weightScale2);
            best = best == 0 ? code : best;
            float loss = Loss(w, code, weightScale2, h);
            if (loss < bestLoss)
            {
                bestLoss = loss;
                best = code;
            }
        }

        return best;
    }
}
