namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The verdict on one module of a checkpoint (or one checkpoint-level item: a config file, the index, a shard, an
/// exclusion entry): what the contract expects, what was found, and every problem with its id and reason.
/// </summary>
public sealed class ModuleCheck
{
    internal ModuleCheck(string name, CheckScope scope, string expected, string found, IReadOnlyList<VerificationIssue> issues,
        string note, double? relativeRmsError, double? sqnrDb)
    {
        Name = name;
        Scope = scope;
        Expected = expected;
        Found = found;
        Issues = issues;
        Status = issues.Count == 0 ? CheckStatus.Pass : issues.Max(i => i.Status);
        var worst = issues.FirstOrDefault(i => i.Status == Status);
        ErrorId = worst?.Id;
        Reason = issues.Count == 0 ? note : string.Join(" ", issues.Where(i => i.Status == Status).Select(i => i.Message));
        RelativeRmsError = relativeRmsError;
        SqnrDb = sqnrDb;
    }

    /// <summary>The module's dotted name, or the file or entry a checkpoint-level check is about.</summary>
    public string Name { get; }

    public CheckScope Scope { get; }

    /// <summary>What the contract (and the checkpoint's own config) says should be here.</summary>
    public string Expected { get; }

    /// <summary>What is on disk.</summary>
    public string Found { get; }

    public CheckStatus Status { get; }

    /// <summary>The id of the first problem of the worst status, or null when the check passed.</summary>
    public string? ErrorId { get; }

    /// <summary>Why it failed or warned (every problem of the worst status), or what was verified when it passed.</summary>
    public string Reason { get; }

    /// <summary>Every problem found, failures and warnings.</summary>
    public IReadOnlyList<VerificationIssue> Issues { get; }

    /// <summary>With -Reference, for NVFP4 modules: ‖source − dequantized‖ / ‖source‖.</summary>
    public double? RelativeRmsError { get; }

    /// <summary>With -Reference, for NVFP4 modules: signal-to-quantization-noise ratio in dB.</summary>
    public double? SqnrDb { get; }

    public bool HasIssue(string id) => Issues.Any(i => i.Id == id);

    public override string ToString() => $"{Status} {Name}" + (Status == CheckStatus.Pass ? "" : $": {Reason}");
}
