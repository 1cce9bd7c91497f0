namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The result of applying a recipe to a model: a decision for every module and for the KV cache, the warnings the
/// guards raised, and what the export will need (the quantization algorithm, which quantizers calibration must measure).
/// </summary>
public sealed class QuantPlan
{
    internal QuantPlan(QuantRecipe recipe, IReadOnlyList<ModulePlan> modules, KvCachePlan kvCache, IReadOnlyList<string> warnings,
        IReadOnlyList<RecipeEntry> unusedEntries)
    {
        Recipe = recipe;
        Modules = modules;
        KvCache = kvCache;
        Warnings = warnings;
        UnusedEntries = unusedEntries;
    }

    public QuantRecipe Recipe { get; }

    public string RecipeName => Recipe.Name;

    public IReadOnlyList<ModulePlan> Modules { get; }

    /// <summary>The KV cache: unquantized, FP8 cast, or FP8 with per-layer scales.</summary>
    public KvCachePlan KvCache { get; }

    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The recipe's algorithm (or Set-QuantConfig -Algorithm's), applied to every NVFP4 weight.</summary>
    public QuantAlgorithm Algorithm => Recipe.Algorithm;

    /// <summary>The algorithm of the NVFP4 weights, or null when the plan has none.</summary>
    public WeightAlgorithm? WeightAlgorithm => Modules.Any(m => m.HasNvfp4Weights) ? Algorithm.Weights : null;

    /// <summary>True when the NVFP4 weights need calibration data (local Hessian's H blocks, GPTQ's layer inputs).</summary>
    public bool NeedsWeightCalibration => WeightAlgorithm?.NeedsData() ?? false;

    /// <summary>Entries that matched no quantizer of this model (often a typo in a pattern).</summary>
    public IReadOnlyList<RecipeEntry> UnusedEntries { get; }

    public int QuantizedCount => Modules.Count(m => m.IsQuantized);

    public int UnquantizableCount => Modules.Count(m => m.Decision == QuantDecision.Unquantizable);

    /// <summary>Every quantized unit (a Linear, or one expert projection of fused experts) with its input quantizer.</summary>
    private IEnumerable<(QuantDecision Decision, QuantizerState? Input)> QuantizedUnits => Modules.SelectMany(m =>
        m.ExpertUnits.Count > 0
            ? m.ExpertUnits.Select(u => (u.Decision, (QuantizerState?)u.Input))
            : [(m.Decision, m.Quantizers.FirstOrDefault(q => q.Quantizer.Role == QuantizerRole.Input))]).Where(u => u.Decision.IsQuantized());

    /// <summary>The distinct formats of the quantized units: NVFP4, W4A16_NVFP4, FP8.</summary>
    public IReadOnlyList<string> Formats => QuantizedUnits.Select(u => u.Decision.QuantAlgo()!).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary><c>NVFP4</c>, <c>W4A16_NVFP4</c> or <c>FP8</c> when one format is used, <c>MIXED_PRECISION</c> for several
    /// (ModelOpt's <c>process_layer_quant_config</c>), or null when nothing is quantized.</summary>
    public string? QuantAlgo => Formats.Count switch
    {
        0 => null,
        1 => Formats[0],
        _ => "MIXED_PRECISION",
    };

    /// <summary>
    /// The quantizers whose amax calibration must measure: the inputs of NVFP4 (W4A4) and FP8 units, and the KV cache in
    /// scaled mode — except where the recipe pins the amax (<c>use_constant_amax</c>, <c>constant_amax</c>).
    /// </summary>
    public IReadOnlyList<string> CalibratedQuantizers => QuantizedUnits
        .Where(u => u.Decision.QuantizesInputs() && u.Input is { Format.PinnedAmax: null })
        .Select(u => u.Input!.Name)
        .Concat(KvCache.CalibratedQuantizers.Select(q => q.Name))
        .Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The calibrated input quantizers of NVFP4 (W4A4) units: those ModelOpt's nvfp4_act_headroom may calibrate.</summary>
    public IReadOnlyList<string> Nvfp4CalibratedInputs => QuantizedUnits
        .Where(u => u.Decision == QuantDecision.Nvfp4 && u.Input is { Format.PinnedAmax: null })
        .Select(u => u.Input!.Name)
        .Distinct(StringComparer.Ordinal).ToList();

    /// <summary>True when some scale can only come from calibration (W4A4 or FP8 inputs, a scaled KV cache, or NVFP4
    /// weights by local Hessian or GPTQ, even weight-only).</summary>
    public bool NeedsCalibration => CalibratedQuantizers.Count > 0 || NeedsWeightCalibration;

    public string Summary => $"{RecipeName}: {QuantizedCount} of {Modules.Count} modules quantized ({QuantAlgo ?? "nothing"})" +
        (WeightAlgorithm is { } a && a != Quantization.WeightAlgorithm.Max ? $", weights by {Algorithm}" : "") +
        (KvCache.Mode != KvCacheMode.None ? $", {KvCache}" : "") +
        (UnquantizableCount > 0 ? $", {UnquantizableCount} unquantizable" : "") +
        (Warnings.Count > 0 ? $", {Warnings.Count} warning(s)" : "");

    public override string ToString() => Summary;
}
