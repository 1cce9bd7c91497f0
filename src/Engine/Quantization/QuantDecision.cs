namespace ModelOptPS.Engine.Quantization;

/// <summary>What happens to a module (or one expert projection) on export.</summary>
public enum QuantDecision
{
    /// <summary>NVFP4 weights and NVFP4 activations (W4A4): needs calibrated input scales.</summary>
    Nvfp4,

    /// <summary>NVFP4 weights, activations unquantized (ModelOpt's W4A16_NVFP4).</summary>
    W4A16Nvfp4,

    /// <summary>Kept in the source dtype, by the recipe or because of its kind.</summary>
    Unquantized,

    /// <summary>Wanted by the recipe but impossible (input features not a multiple of 16): kept and listed as excluded.</summary>
    Unquantizable,

    /// <summary>Fused experts whose experts did not all get the same decision.</summary>
    Mixed,
}

public static class QuantDecisions
{
    public static bool IsQuantized(this QuantDecision d) => d is QuantDecision.Nvfp4 or QuantDecision.W4A16Nvfp4;
}
