using System.Management.Automation;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the quantization plan of a model: one object per module with its decision and why.</para>
/// <para type="description">Each object names the module, its kind and shape, the decision (Nvfp4, W4A16Nvfp4, Fp8,
/// Unquantized, Unquantizable, Mixed) and the recipe entry (position and pattern) that decided it, or that no entry
/// matched. With -ExpertUnits, fused experts are listed per expert and projection; with -KvCache, the KV cache of each
/// attention layer.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "QuantPlan", DefaultParameterSetName = ModulesSet)]
[OutputType(typeof(ModulePlan), typeof(ExpertUnitPlan), ParameterSetName = [ModulesSet])]
[OutputType(typeof(KvCacheLayer), ParameterSetName = [KvCacheSet])]
public sealed class GetQuantPlanCommand : ModelOptCmdlet
{
    private const string ModulesSet = "Modules";
    private const string KvCacheSet = "KvCache";

    /// <summary>A model that went through Set-QuantConfig.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, Position = 0)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>Only modules whose name matches one of these wildcards.</summary>
    [Parameter]
    [SupportsWildcards]
    public string[] Name { get; set; } = [];

    /// <summary>Only modules with one of these decisions.</summary>
    [Parameter(ParameterSetName = ModulesSet)]
    public QuantDecision[] Decision { get; set; } = [];

    /// <summary>Only modules of these kinds.</summary>
    [Parameter(ParameterSetName = ModulesSet)]
    public ModuleKind[] Kind { get; set; } = [];

    /// <summary>List fused experts per expert and projection instead of one row per container.</summary>
    [Parameter(ParameterSetName = ModulesSet)]
    public SwitchParameter ExpertUnits { get; set; }

    /// <summary>List the KV cache, one row per attention layer that has one, instead of the modules.</summary>
    [Parameter(Mandatory = true, ParameterSetName = KvCacheSet)]
    public SwitchParameter KvCache { get; set; }

    protected override void ProcessRecord()
    {
        QuantPlan? plan = null;
        if (!RunEngine($"Listing the plan of {InputObject.Name}", InputObject, () => plan = InputObject.RequirePlan())) return;
        var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToList();
        bool Selected(string name) => patterns.Count == 0 || patterns.Any(p => p.IsMatch(name));
        if (KvCache)
        {
            foreach (var layer in plan!.KvCache.Layers.Where(l => Selected(l.Attention))) WriteObject(layer);
            return;
        }
        foreach (var module in plan!.Modules)
        {
            if (!Selected(module.Name)) continue;
            if (Kind.Length > 0 && !Kind.Contains(module.Kind)) continue;
            if (ExpertUnits && module.ExpertUnits.Count > 0)
            {
                foreach (var unit in module.ExpertUnits.Where(u => Decision.Length == 0 || Decision.Contains(u.Decision)))
                    WriteObject(unit);
                continue;
            }
            if (Decision.Length > 0 && !Decision.Contains(module.Decision)) continue;
            WriteObject(module);
        }
    }
}
