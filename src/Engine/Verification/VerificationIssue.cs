namespace ModelOptPS.Engine.Verification;

/// <summary>One thing found wrong (or worth a warning): a stable id and a sentence that says what and why it matters.</summary>
public sealed record VerificationIssue(string Id, CheckStatus Status, string Message)
{
    public override string ToString() => $"{Id}: {Message}";
}
