using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Static NVFP4 block-scale searches: for each 16-element block, the E4M3 block scale that minimises a loss, written as
/// bytes [rows, cols/16] for <see cref="Nvfp4Static.Quantize"/>; <c>weight_scale_2 = GlobalScale.ForWeight(globalAmax)</c>.
/// <para>
/// What follows ModelOpt (<c>modelopt/torch/quantization</c>): the candidate set (<c>_fp8_scale_candidates.py</c>
/// <c>fp8_scale_candidates</c>: the 126 positive finite E4M3 values), the per-block candidate block amax
/// <c>global_amax·v/448</c> (<c>calib/mse.py</c> <c>NVFP4MSECalibrator._compute_candidate_amax</c>), the plain loss
/// (squared quantize-dequantize error summed over the block, <c>MseCalibrator.collect</c>), the local-Hessian loss
/// <c>dwᵀ H dw</c> with <c>H = XᵀX/N</c> per 16-wide input block (<c>model_calib.py</c> <c>_LocalHessianAccumulator</c>,
/// <c>kernels/.../nvfp4_fp8_sweep.py</c> <c>nvfp4_fp8_scale_sweep_hessian</c>), the tie rule (<c>torch.argmin</c>: the
/// first minimum; the Triton kernels scan with a strict <c>&lt;</c>, the same), so an all-zero block, where every
/// candidate's loss is 0, gets the first candidate 2^-9 (0x01) as in ModelOpt; and the plain <c>mse</c> multiplier
/// search (<c>MseCalibrator</c>: per-block amax × <c>linspace(0.25, 4.0, 39)</c>).
/// </para>
/// <para>
/// Where ModelOptPS deliberately differs: ModelOpt stores the winner as a block amax <c>global_amax·v/448</c> and its
/// export re-derives the byte (<c>nvfp4_tensor.py</c> <c>get_weights_scaling_factor_from_quantizer</c>:
/// <c>fp8(amax/6 · 448/(global_amax/6))</c>, which lands on v); its losses are computed with its fake-quant arithmetic
/// (<c>c·global_amax/6</c> in the Triton kernel, an FP8 round trip in the reference), which may differ from the exported
/// values by an ulp. ModelOptPS writes <c>weight_scale = v</c> directly and computes each candidate's loss on exactly the
/// values the exported checkpoint dequantizes to, <c>E2M1 × v × weight_scale_2</c> with
/// <c>weight_scale_2 = GlobalScale.ForWeight(global_amax)</c> (CUDA order), so the chosen byte is the best for the file
/// actually written. The loss's fp32 operations and summation order are fixed in <see cref="Nvfp4SearchLoss"/>.
/// </para>
/// </summary>
public static class Nvfp4Search
{
    /// <summary>
    /// ModelOpt <c>mse</c> with <c>fp8_scale_sweep</c> (empty <paramref name="hessianBlocks"/>) or <c>local_hessian</c>
    /// (<paramref name="hessianBlocks"/> = [cols/16, 16, 16] row-major, block b for input columns [16b, 16b+16)): every
    /// block gets the candidate with the least loss.
    /// </summary>
    /// <exception cref="ModelOptException">
    /// <see cref="NumericsErrorIds.NonFiniteWeight"/>, <see cref="NumericsErrorIds.InvalidGlobalAmax"/>,
    /// <see cref="NumericsErrorIds.WeightScaleUnderflow"/>, <see cref="NumericsErrorIds.InvalidHessianBlocks"/>, and the
    /// shape/buffer/dtype errors of <see cref="Nvfp4.Quantize"/>.
    /// </exception>
    public static void Fp8ScaleSweep(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, float globalAmax, Span<byte> blockScales,
        ReadOnlySpan<float> hessianBlocks = default) =>
        Search<SweepChooser>(tensorName, weight, dtype, rows, cols, globalAmax, blockScales, hessianBlocks, KernelPath.Auto);

    /// <summary>
    /// ModelOpt's plain <c>mse</c> (no FP8 sweep) for a static NVFP4 weight: per block, the candidate amaxes
    /// <c>block_amax × m</c>, m = <c>linspace(0.25, 4.0, 39)</c>, each turned into a block scale byte by the dynamic rule;
    /// the first m with the least loss wins (see <see cref="MultiplierChooser"/>). Same loss and Hessian option as
    /// <see cref="Fp8ScaleSweep"/>.
    /// </summary>
    public static void MultiplierSearch(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, float globalAmax, Span<byte> blockScales,
        ReadOnlySpan<float> hessianBlocks = default) =>
        Search<MultiplierChooser>(tensorName, weight, dtype, rows, cols, globalAmax, blockScales, hessianBlocks, KernelPath.Auto);

    internal static void Search<TChooser>(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, float globalAmax, Span<byte> blockScales,
        ReadOnlySpan<float> hessianBlocks, KernelPath path)
        where TChooser : struct, IBlockScaleChooser
    {
        float weightScale2 = Validate(tensorName, weight, dtype, rows, cols, globalAmax, blockScales, hessianBlocks, path);
        Fp8SweepKernel.Search<TChooser>(weight, dtype, rows, cols, weightScale2, hessianBlocks, blockScales, path);
    }

    /// <summary>Checks every input and returns <c>weight_scale_2</c>.</summary>
    internal static float Validate(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, float globalAmax, Span<byte> blockScales,
        ReadOnlySpan<float> hessianBlocks, KernelPath path)
    {
        Nvfp4.ValidateShape(tensorName, rows, cols);
        Nvfp4.ValidateBuffers(tensorName, weight.Length, dtype, rows, cols, Nvfp4.PackedLength(rows, cols), blockScales.Length);
        if (!(globalAmax >= 0f) || !float.IsFinite(globalAmax))
        {
            throw new ModelOptException(
                NumericsErrorIds.InvalidGlobalAmax,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}': the global amax given ({Nvfp4.Format(globalAmax)}) must be a finite number ≥ 0.");
        }

        float weightScale2 = GlobalScale.ForWeight(globalAmax);
        if (weightScale2 == 0f)
        {
            throw new ModelOptException(
                NumericsErrorIds.WeightScaleUnderflow,
                ErrorKind.InvalidData,
                $"Tensor '{tensorName}' has global amax {Nvfp4.Format(globalAmax)}, so small that amax/2688 rounds to 0 in fp32: no finite NVFP4 scale exists. Exclude this tensor.");
        }

        int expected = cols / Nvfp4.BlockSize * Nvfp4.BlockSize * Nvfp4.BlockSize;
        if (!hessianBlocks.IsEmpty && (hessianBlocks.Length != expected || hessianBlocks.ContainsAnyExceptInRange(float.MinValue, float.MaxValue)))
        {
            throw new ModelOptException(
                NumericsErrorIds.InvalidHessianBlocks,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}' [{rows}, {cols}]: local-Hessian blocks must be {expected} finite floats ([{cols / Nvfp4.BlockSize}, 16, 16]); "
                + $"got {hessianBlocks.Length}{(hessianBlocks.Length == expected ? " with a NaN or infinity" : "")}.");
        }

        AmaxResult amax = Amax.Compute(weight, dtype, path);
        if (!amax.IsFinite)
        {
            throw Amax.NonFinite(tensorName, weight, dtype, amax.FirstNonFiniteIndex);
        }

        return weightScale2;
    }
}
