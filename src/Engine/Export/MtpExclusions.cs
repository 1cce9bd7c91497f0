namespace ModelOptPS.Engine.Export;

/// <summary>
/// How ModelOpt lists a multi-token-prediction head (unified_export_hf.py <c>_add_mtp_exclusions</c>, hf_ptq's
/// <c>load_mtp_weights</c> / <c>_keys_to_prefixes</c>): the Hugging Face model it quantizes has no <c>mtp.*</c>
/// modules (they are loaded beside it and exported unquantized), so they are not in the exclusion summary; instead the
/// prefixes of every tensor whose name contains "mtp" (its first component unless <c>model</c>, and the prefix up to
/// <c>layers.N</c>), sorted, are appended as <c>prefix*</c> after the summary, unless already listed: <c>mtp*</c>,
/// <c>mtp.layers.0*</c>. Older ModelOpt releases wrote the two in the other order.
/// </summary>
public static class MtpExclusions
{
    /// <summary>True for a tensor or module ModelOpt treats as part of the MTP head.</summary>
    public static bool IsMtp(string name) => name.Contains("mtp", StringComparison.Ordinal);

    /// <summary>The sorted prefixes of the MTP tensors among <paramref name="tensorNames"/>; empty without an MTP head.</summary>
    public static IReadOnlyList<string> Prefixes(IEnumerable<string> tensorNames)
    {
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var parts in tensorNames.Where(IsMtp).Select(n => n.Split('.')))
        {
            // A "model*" wildcard would cover the whole backbone.
            if (parts[0] != "model") prefixes.Add(parts[0]);
            for (int i = 0; i + 1 < parts.Length; i++)
            {
                if (parts[i] != "layers" || !parts[i + 1].All(char.IsAsciiDigit) || parts[i + 1].Length == 0) continue;
                prefixes.Add(string.Join('.', parts[..(i + 2)]));
                break;
            }
        }
        return prefixes.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary><paramref name="exclude"/> with <c>prefix*</c> appended for each prefix not already listed.</summary>
    public static List<string> Append(IEnumerable<string> exclude, IEnumerable<string> prefixes)
    {
        var list = exclude.ToList();
        foreach (var pattern in prefixes.Select(p => p + "*"))
            if (!list.Contains(pattern)) list.Add(pattern);
        return list;
    }
}
