namespace ModelOptPS.Engine.Verification;

/// <summary>Every check of one verification, by scope and name, in the order they were first touched.</summary>
internal sealed class CheckList
{
    private readonly Dictionary<(CheckScope, string), CheckBuilder> _checks = [];
    private readonly List<CheckBuilder> _order = [];

    public CheckBuilder Get(CheckScope scope, string name)
    {
        if (!_checks.TryGetValue((scope, name), out var check))
        {
            check = new CheckBuilder(name, scope);
            _checks.Add((scope, name), check);
            _order.Add(check);
        }
        return check;
    }

    public CheckBuilder Module(string name) => Get(CheckScope.Module, name);

    public bool Contains(CheckScope scope, string name) => _checks.ContainsKey((scope, name));

    /// <summary>Checkpoint-level checks first (by scope), then modules, each in first-touched order.</summary>
    public IReadOnlyList<ModuleCheck> Build() =>
        _order.Select((c, i) => (c, i)).OrderBy(x => x.c.Scope).ThenBy(x => x.i).Select(x => x.c.Build()).ToList();
}
