using System.Management.Automation;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Decides, with a ModelOpt-compatible recipe, which modules of a model become NVFP4 or FP8, and the KV cache.</para>
/// <para type="description">Applies a preset, or a recipe file in ModelOpt's quant_cfg format (JSON or YAML), plus
/// optional -Include/-Exclude module patterns, to every quantizer of the model, and attaches the resulting plan to the
/// model, which flows on down the pipeline. Get-QuantPlan shows the decision for each module and the recipe entry
/// that made it. A plan that quantizes nothing is an error unless -AllowEmptyPlan is given.</para>
/// </summary>
[Cmdlet(VerbsCommon.Set, "QuantConfig", DefaultParameterSetName = PresetSet)]
[OutputType(typeof(HFModel))]
public sealed class SetQuantConfigCommand : ModelOptCmdlet
{
    private const string PresetSet = "Preset";
    private const string FileSet = "RecipeFile";

    /// <summary>The model from Import-HFModel.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>A built-in recipe: NVFP4_DEFAULT (the default), NVFP4_MLP_ONLY, NVFP4_EXPERTS_ONLY, NVFP4_OMLP_ONLY, W4A16_NVFP4,
    /// NVFP4_EXPERTS_ONLY_KV_FP8_CAST (nvidia/Qwen3.5-397B-A17B-NVFP4 style), W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST (nvidia/Qwen3.6-35B-A3B-NVFP4 style).</summary>
    [Parameter(Position = 0, ParameterSetName = PresetSet)]
    [ArgumentCompleter(typeof(PresetCompleter))]
    [ValidateNotNullOrEmpty]
    public string Preset { get; set; } = Presets.Default;

    /// <summary>A recipe file in ModelOpt's quant_cfg format (.yaml, .yml or .json).</summary>
    [Parameter(Mandatory = true, ParameterSetName = FileSet)]
    [Alias("Recipe")]
    [ValidateNotNullOrEmpty]
    public string RecipePath { get; set; } = "";

    /// <summary>Module-name patterns (fnmatch, e.g. '*.mlp.*') to quantize in addition; they win over the recipe.</summary>
    [Parameter]
    public string[] Include { get; set; } = [];

    /// <summary>Module-name patterns to keep unquantized; applied last, so they win over everything.</summary>
    [Parameter]
    public string[] Exclude { get; set; } = [];

    /// <summary>The KV cache, applied after the recipe: None (unquantized), Fp8Cast (FP8, no scales: ModelOpt's default
    /// kv_fp8_cast) or Fp8Scaled (FP8 with per-layer k/v scales from calibration: ModelOpt's kv_fp8). Omitted: as the recipe says.</summary>
    [Parameter]
    public KvCacheMode? KvCache { get; set; }

    /// <summary>How NVFP4 weights get their block scales: Max, Mse, MseFp8Sweep, LocalHessian or Gptq (the last two need
    /// Invoke-Calibration). Overrides the recipe's algorithm. Omitted: as the recipe says (presets: Max).</summary>
    [Parameter]
    public WeightAlgorithm? Algorithm { get; set; }

    /// <summary>Accept a plan that quantizes no module (otherwise an error, since the export would be a copy).</summary>
    [Parameter]
    public SwitchParameter AllowEmptyPlan { get; set; }

    protected override void ProcessRecord()
    {
        RunEngine($"Planning the quantization of {InputObject.Name}", InputObject, () =>
        {
            var recipe = LoadRecipe();
            recipe = recipe.WithModulePatterns(Include, Exclude, QuantizerFormat.Nvfp4, weightOnly: !recipe.EnablesInputs);
            if (KvCache is { } kv) recipe = recipe.WithKvCache(kv);
            // The recipe's own settings (GPTQ's perc_damp, block_size) stay when it already names this algorithm.
            if (Algorithm is { } algorithm && algorithm != recipe.Algorithm.Weights) recipe = recipe.WithAlgorithm(new QuantAlgorithm(algorithm));
            WriteVerbose($"Applying recipe '{recipe.Name}' ({recipe.Entries.Count} entries, later entries win) to {InputObject.Modules.Count} modules of {InputObject.Name}.");
            var plan = QuantPlanner.Plan(InputObject, recipe, AllowEmptyPlan);
            foreach (var warning in plan.Warnings) WriteWarning(warning);
            WriteVerbose(plan.Summary + ".");
            InputObject.Plan = plan;
            WriteObject(InputObject);
        });
    }

    private QuantRecipe LoadRecipe()
    {
        if (ParameterSetName == FileSet) return RecipeFile.Load(ResolvePath(RecipePath));
        if (!Presets.Exists(Preset))
            throw new ModelOptException("UnknownPreset", ErrorKind.InvalidArgument,
                $"'{Preset}' is not a preset. Presets: {string.Join(", ", Presets.Names)}.");
        return Presets.Get(Preset);
    }
}
