using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// What the ModelOpt config files say about a plan: its <c>quant_algo</c> (one format, or <c>MIXED_PRECISION</c>), the
/// KV cache's, every quantized layer with its config, and the exclusion list (null where ModelOpt writes none).
/// </summary>
public sealed record QuantizationSummary(string QuantAlgo, string? KvCacheQuantAlgo, IReadOnlyList<QuantizedLayer> Layers, IReadOnlyList<string>? Exclude)
{
    public const string MixedPrecision = "MIXED_PRECISION";

    public bool IsMixed => QuantAlgo == MixedPrecision;

    public static QuantizationSummary Of(QuantPlan plan, IReadOnlyList<string>? exclude) =>
        new(plan.QuantAlgo!, plan.KvCache.QuantAlgo, QuantizedLayers.Of(plan), exclude);
}
