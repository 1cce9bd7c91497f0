using System.Text.RegularExpressions;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// A checkpoint's list of unquantized modules (<c>exclude_modules</c> / <c>ignore</c>) with the consumers' matching
/// rules (consumers.md §1.2, §2.2, §3). Two questions are asked of it, because the engines disagree:
/// <list type="bullet">
/// <item><see cref="Listing"/>: the entry that <em>every</em> engine honours for a module. ModelOpt format: exact name
/// or fnmatch (vLLM, SGLang's full-match regex and TensorRT-LLM's fnmatch all accept those).
/// compressed-tensors: exact name or <c>re:</c> pattern matched at the start.</item>
/// <item><see cref="Excluding"/>: an entry that <em>some</em> engine applies. ModelOpt format adds vLLM's legacy
/// substring test (<c>model.layers.1</c> also hits <c>model.layers.12.*</c>) and its MoE rule (an entry naming one
/// expert excludes the whole expert set of that layer).</item>
/// </list>
/// </summary>
internal sealed class ExclusionList
{
    private const string RegexPrefix = "re:";
    private const string ExpertsComponent = ".experts.";

    private readonly QuantFormat _format;
    private readonly Dictionary<string, Regex?> _regexes = new(StringComparer.Ordinal);

    public ExclusionList(IReadOnlyList<string> entries, QuantFormat format)
    {
        Entries = entries;
        _format = format;
    }

    public static ExclusionList Empty { get; } = new([], QuantFormat.None);

    public IReadOnlyList<string> Entries { get; }

    /// <summary>The first entry every engine matches to <paramref name="module"/>, or null.</summary>
    public string? Listing(string module) => Entries.FirstOrDefault(e => IsListing(e, module));

    /// <summary>The first entry any engine matches to <paramref name="module"/>, or null.</summary>
    public string? Excluding(string module) => Entries.FirstOrDefault(e => Matches(e, module));

    /// <summary>True when some engine applies <paramref name="entry"/> to <paramref name="module"/>.</summary>
    public bool Matches(string entry, string module)
    {
        if (IsListing(entry, module)) return true;
        if (_format == QuantFormat.CompressedTensors) return false;
        if (module.Contains(entry, StringComparison.Ordinal)) return true;
        int experts = module.IndexOf(ExpertsComponent, StringComparison.Ordinal);
        // vLLM is_layer_skipped: an MoE prefix is skipped when it is a substring of any entry that mentions experts.
        return experts >= 0 && entry.Contains("experts", StringComparison.Ordinal)
            && entry.Contains(module[..(experts + ExpertsComponent.Length - 1)], StringComparison.Ordinal);
    }

    /// <summary>A clause saying how <paramref name="entry"/> reaches <paramref name="module"/>, for reasons.</summary>
    public string Explain(string entry, string module) =>
        IsListing(entry, module) ? $"'{entry}' matches it"
        : module.Contains(entry, StringComparison.Ordinal) ? $"'{entry}' is a substring of its name (vLLM's legacy rule)"
        : $"'{entry}' names an expert of its layer, and vLLM then excludes every expert of that layer";

    private bool IsListing(string entry, string module)
    {
        if (entry == module) return true;
        if (_format == QuantFormat.CompressedTensors)
            return entry.StartsWith(RegexPrefix, StringComparison.Ordinal) && Regex(entry)?.IsMatch(module) == true;
        // Without wildcard characters fnmatch is plain equality; skipping it keeps large lists × many modules cheap.
        return entry.AsSpan().IndexOfAny('*', '?', '[') >= 0 && Fnmatch.IsMatch(module, entry);
    }

    /// <summary>compressed-tensors <c>re:</c> entries use Python's <c>re.match</c>: anchored at the start only.</summary>
    private Regex? Regex(string entry)
    {
        if (_regexes.TryGetValue(entry, out var regex)) return regex;
        try
        {
            regex = new Regex(@"\A(?:" + entry[RegexPrefix.Length..] + ")", RegexOptions.CultureInvariant);
        }
        catch (ArgumentException)
        {
            regex = null;
        }
        _regexes[entry] = regex;
        return regex;
    }
}
