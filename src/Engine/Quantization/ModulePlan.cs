using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The plan for one module: the decision, and why — the recipe entry (position, pattern, source) that decided
/// its weight quantizer, or that no entry matched, or the property of the module that ruled it out.
/// </summary>
public sealed class ModulePlan
{
    internal ModulePlan(ModelModule module, QuantDecision decision, string reason, RecipeEntry? decidedBy,
        IReadOnlyList<QuantizerState> quantizers, IReadOnlyList<ExpertUnitPlan> expertUnits)
    {
        Module = module;
        Decision = decision;
        Reason = reason;
        DecidedBy = decidedBy;
        Quantizers = quantizers;
        ExpertUnits = expertUnits;
    }

    public string Name => Module.Name;

    public ModuleKind Kind => Module.Kind;

    public ModelSection Section => Module.Section;

    public int? Layer => Module.Layer;

    public int? Expert => Module.Expert;

    public string Shape => Module.ShapeText;

    public QuantDecision Decision { get; }

    /// <summary>Why, in words a user can act on.</summary>
    public string Reason { get; }

    /// <summary>The entry that decided the (weight) quantizer; null when none matched or the kind decided.</summary>
    public RecipeEntry? DecidedBy { get; }

    /// <summary>Position of the deciding entry in the recipe (1-based), or null.</summary>
    public int? EntryPosition => DecidedBy?.Position;

    /// <summary>Pattern of the deciding entry, or null.</summary>
    public string? EntryPattern => DecidedBy?.Pattern;

    public IReadOnlyList<QuantizerState> Quantizers { get; }

    /// <summary>Per expert and projection, for fused experts (empty otherwise).</summary>
    public IReadOnlyList<ExpertUnitPlan> ExpertUnits { get; }

    public ModelModule Module { get; }

    /// <summary>
    /// How the NVFP4 weights' block scales are chosen (the recipe's algorithm), or null when the module has no NVFP4
    /// weights (FP8, unquantized): the algorithms choose NVFP4 block scales only.
    /// </summary>
    public WeightAlgorithm? Algorithm { get; private set; }

    /// <summary>True when some weight of the module (a Linear, or one expert projection) is NVFP4.</summary>
    public bool HasNvfp4Weights => Decision.IsNvfp4Weights() || ExpertUnits.Any(u => u.Decision.IsNvfp4Weights());

    internal ModulePlan WithAlgorithm(WeightAlgorithm algorithm)
    {
        Algorithm = HasNvfp4Weights ? algorithm : null;
        return this;
    }

    public bool IsQuantized => Decision.IsQuantized() || (Decision == QuantDecision.Mixed && ExpertUnits.Any(u => u.Decision.IsQuantized()));

    public override string ToString() => $"{Name}: {Decision} ({Reason})";
}
