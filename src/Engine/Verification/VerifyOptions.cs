namespace ModelOptPS.Engine.Verification;

/// <summary>How a verification reports what it does. Everything is optional.</summary>
public sealed record VerifyOptions
{
    public static VerifyOptions Default { get; } = new();

    /// <summary>Called after each module, on the calling thread (so a cmdlet may call Write-Progress from it).</summary>
    public IProgress<VerificationProgress>? Progress { get; init; }

    /// <summary>Sentences saying what is being checked, on the calling thread (a cmdlet's -Verbose stream).</summary>
    public Action<string>? Log { get; init; }

    public CancellationToken CancellationToken { get; init; }
}

/// <summary>Where a verification is: <paramref name="Done"/> of <paramref name="Total"/> modules checked.</summary>
public readonly record struct VerificationProgress(string Module, int Done, int Total);
