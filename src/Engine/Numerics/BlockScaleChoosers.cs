namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// How a search picks a block's scale from the losses of all 126 FP8 candidates (index i = byte 0x01 + i). Structs, so
/// the sweep kernels are specialised per rule by the JIT.
/// </summary>
internal interface IBlockScaleChooser
{
    /// <summary>The chosen E4M3 byte, given the block's 126 candidate losses, its largest |w| and <c>weight_scale_2</c>.</summary>
    static abstract byte Choose(ReadOnlySpan<float> losses, float blockAmax, float weightScale2);
}

/// <summary>ModelOpt <c>mse</c> with <c>fp8_scale_sweep</c> / <c>local_hessian</c>: every candidate competes.</summary>
internal readonly struct SweepChooser : IBlockScaleChooser
{
    public static byte Choose(ReadOnlySpan<float> losses, float blockAmax, float weightScale2) =>
        Fp8ScaleCandidates.Byte(Nvfp4SearchLoss.FirstMinimum(losses[..Fp8ScaleCandidates.Count]));
}

/// <summary>
/// ModelOpt's plain <c>mse</c> (<c>MseCalibrator</c>, no <c>fp8_scale_sweep</c>) on a static NVFP4 weight: per block,
/// candidate amaxes <c>block_amax × m</c> for the multipliers <see cref="Multipliers"/>; each becomes a block scale byte
/// by the dynamic rule (spec step 3 applied to the scaled amax: <see cref="Nvfp4Reference.BlockScale"/>), and the first
/// multiplier with the least loss wins. The bytes grow with m, so a repeated byte (same loss) never displaces an earlier one.
/// An all-zero block has only the candidate 1.0 (0x38), as in the dynamic rule.
/// </summary>
internal readonly struct MultiplierChooser : IBlockScaleChooser
{
    /// <summary>
    /// <c>torch.linspace(0.25, 4.0, steps=39)</c> in fp32 (ModelOpt: <c>ceil((4.0 - 0.25) / 0.1) + 1</c> = 39 steps), with
    /// ATen's formula: <c>step = (end - start) / (steps - 1)</c>, <c>start + step·k</c> for the first half and
    /// <c>end - step·(steps - 1 - k)</c> for the second, each one fused multiply-add as libtorch's vectorised CPU kernel
    /// (and nvcc's contraction) evaluates it; a test checks the values against libtorch bit for bit.
    /// </summary>
    public static readonly float[] Multipliers = CreateMultipliers();

    public static byte Choose(ReadOnlySpan<float> losses, float blockAmax, float weightScale2)
    {
        byte best = Nvfp4Reference.BlockScale(blockAmax * Multipliers[0], weightScale2);
        float bestLoss = float.PositiveInfinity;
        foreach (float multiplier in Multipliers)
        {
            byte candidate = Nvfp4Reference.BlockScale(blockAmax * multiplier, weightScale2);
            if (losses[candidate - 1] < bestLoss)
            {
                bestLoss = losses[candidate - 1];
                best = candidate;
            }
        }

        return best;
    }

    private static float[] CreateMultipliers()
    {
        const int steps = 39;
        const float start = 0.25f, end = 4f;
        float step = (end - start) / (steps - 1);
        var multipliers = new float[steps];
        for (int k = 0; k < steps; k++)
        {
            multipliers[k] = k < steps / 2 ? MathF.FusedMultiplyAdd(step, k, start) : MathF.FusedMultiplyAdd(-step, steps - 1 - k, end);
        }

        return multipliers;
    }
}
