namespace ModelOptPS.Engine.Quantization;

/// <summary>A quantizer after the recipe ran: enabled or not, its format, and the entry that decided it.</summary>
public sealed record QuantizerState(Quantizer Quantizer, bool Enabled, QuantizerFormat? Format, RecipeEntry? DecidedBy)
{
    public string Name => Quantizer.Name;

    /// <summary>Applies every entry in order (later entries win) and records the last one that matched.</summary>
    public static QuantizerState Resolve(Quantizer quantizer, QuantRecipe recipe, ISet<int> matchedPositions)
    {
        bool enabled = false;
        QuantizerFormat? format = null;
        RecipeEntry? decidedBy = null;
        foreach (var entry in recipe.Entries)
        {
            if (!quantizer.Matches(entry)) continue;
            matchedPositions.Add(entry.Position);
            if (entry.Format is not null) format = entry.Format;
            enabled = entry.Enables;
            decidedBy = entry;
        }
        return new QuantizerState(quantizer, enabled, format, decidedBy);
    }

    public string Explain() => DecidedBy is null
        ? "no recipe entry matched"
        : $"{(Enabled ? "enabled" : "disabled")} by {DecidedBy}";

    /// <summary>The name and what decided it, so list views of plan rows read as sentences rather than record dumps.</summary>
    public override string ToString() => $"{Name}: {Explain()}";
}
