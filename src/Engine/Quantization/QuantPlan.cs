namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The result of applying a recipe to a model: a decision for every module, the warnings the guards raised, and
/// what the export will need (the quantization algorithm, whether calibration is required).
/// </summary>
public sealed class QuantPlan
{
    internal QuantPlan(QuantRecipe recipe, IReadOnlyList<ModulePlan> modules, IReadOnlyList<string> warnings,
        IReadOnlyList<RecipeEntry> unusedEntries)
    {
        Recipe = recipe;
        Modules = modules;
        Warnings = warnings;
        UnusedEntries = unusedEntries;
    }

    public QuantRecipe Recipe { get; }

    public string RecipeName => Recipe.Name;

    public IReadOnlyList<ModulePlan> Modules { get; }

    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Entries that matched no quantizer of this model (often a typo in a pattern).</summary>
    public IReadOnlyList<RecipeEntry> UnusedEntries { get; }

    public int QuantizedCount => Modules.Count(m => m.IsQuantized);

    public int UnquantizableCount => Modules.Count(m => m.Decision == QuantDecision.Unquantizable);

    /// <summary>Decisions of every quantized unit: Linears, and each expert projection of fused experts.</summary>
    private IEnumerable<QuantDecision> UnitDecisions => Modules.SelectMany(m =>
        m.ExpertUnits.Count > 0 ? m.ExpertUnits.Select(u => u.Decision) : [m.Decision]).Where(d => d.IsQuantized());

    /// <summary><c>NVFP4</c>, <c>W4A16_NVFP4</c>, <c>MIXED_PRECISION</c> (both), or null when nothing is quantized.</summary>
    public string? QuantAlgo
    {
        get
        {
            var kinds = UnitDecisions.Distinct().ToList();
            return kinds.Count switch
            {
                0 => null,
                1 => kinds[0] == QuantDecision.Nvfp4 ? "NVFP4" : "W4A16_NVFP4",
                _ => "MIXED_PRECISION",
            };
        }
    }

    /// <summary>True when some module quantizes its input and so needs a calibrated input scale.</summary>
    public bool NeedsCalibration => UnitDecisions.Contains(QuantDecision.Nvfp4);

    public string Summary => $"{RecipeName}: {QuantizedCount} of {Modules.Count} modules quantized ({QuantAlgo ?? "nothing"})" +
        (UnquantizableCount > 0 ? $", {UnquantizableCount} unquantizable" : "") +
        (Warnings.Count > 0 ? $", {Warnings.Count} warning(s)" : "");

    public override string ToString() => Summary;
}
