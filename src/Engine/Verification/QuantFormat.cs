namespace ModelOptPS.Engine.Verification;

/// <summary>The quantized layout a checkpoint declares in its config files.</summary>
public enum QuantFormat
{
    /// <summary>No quantization config: not a quantized checkpoint (or one whose config was lost).</summary>
    None,

    /// <summary>ModelOpt HF format: hf_quant_config.json and config.json <c>quant_method: modelopt</c>.</summary>
    ModelOpt,

    /// <summary>compressed-tensors <c>nvfp4-pack-quantized</c>: config.json <c>quant_method: compressed-tensors</c>.</summary>
    CompressedTensors,
}
