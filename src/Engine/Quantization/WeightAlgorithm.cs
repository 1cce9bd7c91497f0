namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// How the block scales (and, for GPTQ, the values) of NVFP4 weights are chosen. The output format is the same for all:
/// packed E2M1 codes, E4M3 block scales, one fp32 <c>weight_scale_2</c> from the group's max |w|.
/// </summary>
public enum WeightAlgorithm
{
    /// <summary>ModelOpt's <c>max</c>: each block's scale from its own max |w| (dynamic NVFP4).</summary>
    Max,

    /// <summary>ModelOpt's <c>mse</c>: per block, the multiple of the block's max (0.25 to 4.0, step 0.1) with the least squared error.</summary>
    Mse,

    /// <summary>ModelOpt's <c>mse</c> with <c>fp8_scale_sweep</c>: per block, the E4M3 scale (of the 126 positive finite ones) with the least squared error.</summary>
    MseFp8Sweep,

    /// <summary>ModelOpt's <c>local_hessian</c>: the FP8 scale sweep with the block loss dwᵀ·H·dw, H from the calibration inputs.</summary>
    LocalHessian,

    /// <summary>ModelOpt's <c>gptq</c>: layer by layer, quantize column blocks and move the rounding error onto the columns not yet quantized.</summary>
    Gptq,
}

public static class WeightAlgorithms
{
    /// <summary>True for the algorithms that need calibration data for the weights (statistics or solutions from Invoke-Calibration).</summary>
    public static bool NeedsData(this WeightAlgorithm a) => a is WeightAlgorithm.LocalHessian or WeightAlgorithm.Gptq;

    /// <summary>The algorithm as a ModelOpt recipe writes it.</summary>
    public static string ModelOptSpelling(this WeightAlgorithm a) => a switch
    {
        WeightAlgorithm.Max => "max",
        WeightAlgorithm.Mse => "mse",
        WeightAlgorithm.MseFp8Sweep => "{method: mse, fp8_scale_sweep: true}",
        WeightAlgorithm.LocalHessian => "local_hessian",
        _ => "gptq",
    };
}
