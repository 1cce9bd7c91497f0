namespace ModelOptPS.Engine.Verification;

/// <summary>Collects what is learned about one check while the verifier walks the checkpoint.</summary>
internal sealed class CheckBuilder
{
    private readonly List<VerificationIssue> _issues = [];

    public CheckBuilder(string name, CheckScope scope)
    {
        Name = name;
        Scope = scope;
    }

    public string Name { get; }

    public CheckScope Scope { get; }

    public string Expected { get; set; } = "";

    public string Found { get; set; } = "";

    /// <summary>What a passing check verified, shown as its reason.</summary>
    public string Note { get; set; } = "";

    public double? RelativeRmsError { get; set; }

    public double? SqnrDb { get; set; }

    public bool Failed => FailureCount > 0;

    public int FailureCount => _issues.Count(i => i.Status == CheckStatus.Fail);

    public bool Has(string id) => _issues.Any(i => i.Id == id);

    public CheckBuilder Fail(string id, string message)
    {
        _issues.Add(new VerificationIssue(id, CheckStatus.Fail, message));
        return this;
    }

    public CheckBuilder Warn(string id, string message)
    {
        _issues.Add(new VerificationIssue(id, CheckStatus.Warn, message));
        return this;
    }

    public ModuleCheck Build() => new(Name, Scope, Expected, Found, _issues.ToList(), Note, RelativeRmsError, SqnrDb);
}
