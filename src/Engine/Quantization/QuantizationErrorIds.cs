namespace ModelOptPS.Engine.Quantization;

/// <summary>Stable error ids of planning (runbooks and tests match on these strings).</summary>
public static class QuantizationErrorIds
{
    /// <summary>A recipe decides the shards of a consumer's merged layer (q/k/v, gate/up, in_proj_qkv/z, …) differently.</summary>
    public const string MergedLayerPartiallyQuantized = nameof(MergedLayerPartiallyQuantized);

    /// <summary>An enabled quantizer got no format (cfg) from any entry.</summary>
    public const string QuantizerWithoutFormat = nameof(QuantizerWithoutFormat);

    /// <summary>A weight or input quantizer set to a format ModelOptPS does not export (not NVFP4, not FP8 per tensor).</summary>
    public const string UnsupportedQuantizerFormat = nameof(UnsupportedQuantizerFormat);

    /// <summary>FP8 weights with the input quantizer disabled: an FP8 layer without input_scale, which engines cannot load.</summary>
    public const string Fp8WithoutInputQuantizer = nameof(Fp8WithoutInputQuantizer);

    /// <summary>A KV-cache quantizer set to something other than FP8 per tensor.</summary>
    public const string UnsupportedKvCacheFormat = nameof(UnsupportedKvCacheFormat);

    /// <summary>Some KV-cache quantizers cast (constant amax) and others scaled: engines take one KV format per model.</summary>
    public const string KvCacheModesMixed = nameof(KvCacheModesMixed);

    /// <summary>The experts of one fused container planned in different formats, which one quantized_layers entry cannot describe.</summary>
    public const string FusedExpertsFormatsMixed = nameof(FusedExpertsFormatsMixed);

    /// <summary>A recipe file names a calibration algorithm ModelOptPS does not implement (awq_lite, smoothquant, …; max, mse, local_hessian and gptq are).</summary>
    public const string UnsupportedCalibrationAlgorithm = nameof(UnsupportedCalibrationAlgorithm);
}
