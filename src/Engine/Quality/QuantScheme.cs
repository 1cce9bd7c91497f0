namespace ModelOptPS.Engine.Quality;

/// <summary>The name of a quantized form for reports, in ModelOpt's terms: <c>NVFP4</c>, <c>W4A16_NVFP4</c>, <c>FP8</c>,
/// <c>MIXED_PRECISION (FP8, W4A16_NVFP4)</c>, with <c> + FP8 KV</c> when the KV cache is FP8.</summary>
internal static class QuantScheme
{
    /// <param name="algorithms">The <c>quant_algo</c> of every quantized Linear (repeats allowed).</param>
    public static string Describe(IEnumerable<string> algorithms, bool fp8KvCache)
    {
        var distinct = algorithms.Distinct().Order(StringComparer.Ordinal).ToList();
        string? weights = distinct.Count switch
        {
            0 => null,
            1 => distinct[0],
            _ => $"MIXED_PRECISION ({string.Join(", ", distinct)})",
        };
        string? kvCache = fp8KvCache ? "FP8 KV" : null;
        return weights is null && kvCache is null ? "unquantized" : string.Join(" + ", new[] { weights, kvCache }.OfType<string>());
    }
}
