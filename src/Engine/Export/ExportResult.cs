namespace ModelOptPS.Engine.Export;

/// <summary>What an export wrote.</summary>
public sealed class ExportResult
{
    public required string Path { get; init; }
    public required string SourcePath { get; init; }
    public required ExportFormat Format { get; init; }
    /// <summary><c>quant_algo</c>: NVFP4, W4A16_NVFP4, FP8, or MIXED_PRECISION when the plan uses several.</summary>
    public required string QuantAlgo { get; init; }

    /// <summary><c>kv_cache_quant_algo</c>: FP8 for a quantized KV cache (cast or scaled), else null.</summary>
    public required string? KvCacheQuantAlgo { get; init; }
    public required IReadOnlyList<string> Files { get; init; }
    public required long SourceSize { get; init; }
    public required long OutputSize { get; init; }
    public required int TensorCount { get; init; }

    /// <summary>Modules written quantized (per expert for fused experts).</summary>
    public required int QuantizedModules { get; init; }

    /// <summary>The exclusion list written into the config (exclude_modules or ignore); empty when none is written.</summary>
    public required IReadOnlyList<string> ExcludedModules { get; init; }

    public required IReadOnlyList<string> Warnings { get; init; }
    public required TimeSpan Duration { get; init; }

    /// <summary>Output size as a fraction of the source size.</summary>
    public double SizeRatio => SourceSize == 0 ? 0 : (double)OutputSize / SourceSize;

    public override string ToString() => Path;
}
