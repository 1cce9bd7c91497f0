using System.Globalization;

namespace ModelOptPS.Engine.Verification;

/// <summary>The outcome of verifying one checkpoint: every check, and the summary a runbook acts on.</summary>
public sealed class VerificationReport
{
    internal VerificationReport(string path, string? reference, QuantFormat format, string? quantAlgo, string? kvCacheQuantAlgo,
        IReadOnlyList<ModuleCheck> checks, int shardCount, int tensorCount)
    {
        KvCacheQuantAlgo = kvCacheQuantAlgo;
        Path = path;
        Reference = reference;
        Format = format;
        QuantAlgo = quantAlgo;
        Checks = checks;
        ShardCount = shardCount;
        TensorCount = tensorCount;
        var modules = checks.Where(c => c.Scope == CheckScope.Module).ToList();
        QuantizedModules = modules.Count(c => c.Found.StartsWith(Nvfp4Naming.FoundPrefix, StringComparison.Ordinal)
            || c.Found.StartsWith(Fp8Module.FoundPrefix, StringComparison.Ordinal));
        ModuleCount = modules.Count;
        var measured = modules.Where(c => c.RelativeRmsError is not null).ToList();
        if (measured.Count > 0)
        {
            var worst = measured.MaxBy(c => c.RelativeRmsError!.Value)!;
            WorstModule = worst.Name;
            MaxRelativeRmsError = worst.RelativeRmsError;
            MeanRelativeRmsError = measured.Average(c => c.RelativeRmsError!.Value);
            MinSqnrDb = measured.Where(c => c.SqnrDb is not null).Select(c => c.SqnrDb).Min();
        }
    }

    public string Path { get; }

    /// <summary>The source checkpoint compared against, or null.</summary>
    public string? Reference { get; }

    public QuantFormat Format { get; }

    /// <summary>
    /// <c>NVFP4</c>, <c>W4A16_NVFP4</c>, <c>FP8</c> or <c>MIXED_PRECISION</c> as declared (compressed-tensors weight-only
    /// reads as W4A16_NVFP4).
    /// </summary>
    public string? QuantAlgo { get; }

    /// <summary><c>FP8</c> when the checkpoint declares a quantized KV cache, else null.</summary>
    public string? KvCacheQuantAlgo { get; }

    public IReadOnlyList<ModuleCheck> Checks { get; }

    /// <summary>True when no check failed (warnings allowed).</summary>
    public bool Passed => FailedCount == 0;

    public CheckStatus Status => Passed ? (WarningCount > 0 ? CheckStatus.Warn : CheckStatus.Pass) : CheckStatus.Fail;

    public int PassedCount => Checks.Count(c => c.Status == CheckStatus.Pass);

    public int FailedCount => Checks.Count(c => c.Status == CheckStatus.Fail);

    public int WarningCount => Checks.Count(c => c.Status == CheckStatus.Warn);

    public IEnumerable<ModuleCheck> Failures => Checks.Where(c => c.Status == CheckStatus.Fail);

    public int ModuleCount { get; }

    /// <summary>Modules holding NVFP4 or FP8 tensors.</summary>
    public int QuantizedModules { get; }

    public int ShardCount { get; }

    public int TensorCount { get; }

    /// <summary>With -Reference: the largest relative RMS error of any quantized module, and which one.</summary>
    public double? MaxRelativeRmsError { get; }

    public string? WorstModule { get; }

    public double? MeanRelativeRmsError { get; }

    /// <summary>With -Reference: the lowest SQNR (dB) of any quantized module.</summary>
    public double? MinSqnrDb { get; }

    public string Summary =>
        $"{(Passed ? "PASS" : "FAIL")}: {(Format == QuantFormat.None ? "not quantized" : $"{Format} {QuantAlgo}")}" +
        (KvCacheQuantAlgo is null ? ", " : $" with {KvCacheQuantAlgo} KV cache, ") +
        $"{QuantizedModules} of {ModuleCount} modules quantized, {FailedCount} failed and {WarningCount} warned of {Checks.Count} checks" +
        (MinSqnrDb is { } sqnr ? $", worst SQNR {sqnr.ToString("0.0", CultureInfo.InvariantCulture)} dB" : "");

    public override string ToString() => Summary;
}
