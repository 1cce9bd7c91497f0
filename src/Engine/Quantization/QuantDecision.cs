namespace ModelOptPS.Engine.Quantization;

/// <summary>What happens to a module (or one expert projection) on export.</summary>
public enum QuantDecision
{
    /// <summary>NVFP4 weights and NVFP4 activations (W4A4): needs calibrated input scales.</summary>
    Nvfp4,

    /// <summary>NVFP4 weights, activations unquantized (ModelOpt's W4A16_NVFP4).</summary>
    W4A16Nvfp4,

    /// <summary>FP8 E4M3 weights and activations, one scale per tensor (ModelOpt's FP8): needs calibrated input scales.</summary>
    Fp8,

    /// <summary>Kept in the source dtype, by the recipe or because of its kind.</summary>
    Unquantized,

    /// <summary>Wanted by the recipe but impossible (input features not a multiple of 16): kept and listed as excluded.</summary>
    Unquantizable,

    /// <summary>Fused experts whose experts did not all get the same decision.</summary>
    Mixed,
}

public static class QuantDecisions
{
    public static bool IsQuantized(this QuantDecision d) => d is QuantDecision.Nvfp4 or QuantDecision.W4A16Nvfp4 or QuantDecision.Fp8;

    /// <summary>True when the activations are quantized too, so the export writes an <c>input_scale</c>.</summary>
    public static bool QuantizesInputs(this QuantDecision d) => d is QuantDecision.Nvfp4 or QuantDecision.Fp8;

    /// <summary>True for the two NVFP4 weight formats (packed E2M1, E4M3 block scales, <c>weight_scale_2</c>).</summary>
    public static bool IsNvfp4Weights(this QuantDecision d) => d is QuantDecision.Nvfp4 or QuantDecision.W4A16Nvfp4;

    /// <summary>ModelOpt's <c>quant_algo</c> name (hf_quant_config.json); null for decisions that quantize nothing.</summary>
    public static string? QuantAlgo(this QuantDecision d) => d switch
    {
        QuantDecision.Nvfp4 => "NVFP4",
        QuantDecision.W4A16Nvfp4 => "W4A16_NVFP4",
        QuantDecision.Fp8 => "FP8",
        _ => null,
    };
}
