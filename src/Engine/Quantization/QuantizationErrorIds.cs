namespace ModelOptPS.Engine.Quantization;

/// <summary>Stable error ids of planning (runbooks and tests match on these strings).</summary>
public static class QuantizationErrorIds
{
    /// <summary>A recipe decides the shards of a consumer's merged layer (q/k/v, gate/up, in_proj_qkv/z, …) differently.</summary>
    public const string MergedLayerPartiallyQuantized = nameof(MergedLayerPartiallyQuantized);
}
