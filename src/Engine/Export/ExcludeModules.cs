namespace ModelOptPS.Engine.Export;

/// <summary>
/// The <c>exclude_modules</c> list as ModelOpt writes it: every unquantized Linear-like module, summarised with
/// prefix wildcards at dot boundaries (<c>mtp*</c>, <c>model.visual*</c>, or the pair <c>name</c> + <c>name.*</c>)
/// wherever no quantized module shares the prefix, then sorted. Consumers match entries by exact name, substring and
/// fnmatch, so a wildcard that also covered a quantized module would silently un-quantize it in the engine.
/// </summary>
public static class ExcludeModules
{
    public static IReadOnlyList<string> Summarize(IEnumerable<string> unquantized, IEnumerable<string> quantized)
    {
        // Every prefix wildcard that would also match a quantized module is forbidden.
        var forbidden = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in quantized)
        {
            forbidden.Add(name);
            for (int i = 0; i <= name.Length; i++) forbidden.Add(name[..i] + "*");
        }
        var summary = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in unquantized)
        {
            foreach (var candidate in Candidates(name))
            {
                if (candidate.Any(forbidden.Contains)) continue;
                if (!candidate.All(summary.Contains)) summary.UnionWith(candidate);
                break;
            }
        }
        return summary.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>From the widest to the exact: <c>a*</c>, {<c>a</c>, <c>a.*</c>}, <c>a.b*</c>, …, then the name itself.</summary>
    private static IEnumerable<string[]> Candidates(string name)
    {
        for (int i = 0; i < name.Length; i++)
        {
            if (name[i] != '.') continue;
            yield return [name[..i] + "*"];
            yield return [name[..i], name[..i] + ".*"];
        }
        yield return [name];
    }
}
