using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>Applies a recipe to every quantizer of a model and decides each module, then runs the guards.</summary>
public static class QuantPlanner
{
    /// <summary>NVFP4 blocks are 16 elements along the input dimension.</summary>
    public const int BlockSize = 16;

    public static QuantPlan Plan(HFModel model, QuantRecipe recipe, bool allowEmpty = false)
    {
        var matched = new HashSet<int>();
        var modules = model.Modules.Select(m => PlanModule(m, recipe, matched).WithAlgorithm(recipe.Algorithm.Weights)).ToList();
        MergedLayers.Check(modules, recipe.Name, model.Path);
        var warnings = PlanGuards.Check(modules);
        var kvCache = KvCachePlan.Resolve(model, recipe, matched, warnings);
        var unused = recipe.Entries.Where(e => !matched.Contains(e.Position)).ToList();
        foreach (var entry in unused.Where(e => e.Source is not ("default-disabled" or "-Exclude") && !e.Source.StartsWith("preset ", StringComparison.Ordinal)))
            warnings.Add($"recipe entry {entry} matched no quantizer of this model; check the pattern");
        var plan = new QuantPlan(recipe, modules, kvCache, warnings, unused);
        if (plan.QuantizedCount == 0 && !allowEmpty)
            throw new ModelOptException("PlanQuantizesNothing", ErrorKind.InvalidOperation,
                $"Recipe '{recipe.Name}' quantizes no module of '{model.Name}'{WhyNothing(plan)}: the export would be a copy of the " +
                "source with a quantization config that lies. Check the patterns (Get-QuantPlan shows which entry decided each " +
                "module), or pass -AllowEmptyPlan if this is intended.", model.Path);
        return plan;
    }

    /// <summary>The enabling entries that found nothing to quantize (say, experts-only patterns on a dense model), and a KV cache quantized alone.</summary>
    private static string WhyNothing(QuantPlan plan)
    {
        var unmatched = plan.UnusedEntries.Where(e => e.Enables && e.Target == PatternTarget.Quantizer && !e.Pattern.Contains("_bmm_quantizer", StringComparison.Ordinal))
            .Select(e => $"'{e.Pattern}'").Distinct().ToList();
        return (unmatched.Count > 0 ? $" (its enabling entries {string.Join(", ", unmatched)} match no quantizer of this model)" : "") +
               (plan.KvCache.Mode != KvCacheMode.None ? "; only its KV cache would be quantized" : "");
    }

    private static ModulePlan PlanModule(ModelModule module, QuantRecipe recipe, ISet<int> matched)
    {
        var states = Quantizer.For(module).Select(q => QuantizerState.Resolve(q, recipe, matched)).ToList();
        return module.Kind switch
        {
            ModuleKind.Linear or ModuleKind.Router => PlanLinear(module, states),
            ModuleKind.FusedExperts => PlanFusedExperts(module, states),
            var kind => new ModulePlan(module, QuantDecision.Unquantized, KindReason(kind), null, states, []),
        };
    }

    private static string KindReason(ModuleKind kind) => kind switch
    {
        ModuleKind.Embedding => "embeddings are never quantized (default-disabled by parent class nn.Embedding)",
        ModuleKind.Norm => "norms are not Linear layers",
        ModuleKind.Conv => "convolutions are not Linear layers and are not exported as NVFP4",
        _ => "not a Linear layer",
    };

    private static ModulePlan PlanLinear(ModelModule module, IReadOnlyList<QuantizerState> states)
    {
        var weight = states.Single(s => s.Quantizer.Role == QuantizerRole.Weight);
        var input = states.Single(s => s.Quantizer.Role == QuantizerRole.Input);
        if (module.Kind == ModuleKind.Router)
        {
            string reason = weight.Enabled
                ? $"routers are never quantized (consumers load them unquantized), although {weight.Explain()}"
                : $"router: {weight.Explain()}";
            return new ModulePlan(module, QuantDecision.Unquantized, reason, weight.DecidedBy, states, []);
        }
        var (decision, why) = Decide(module, weight, input, module.InFeatures!.Value);
        return new ModulePlan(module, decision, why, weight.DecidedBy, states, []);
    }

    private static ModulePlan PlanFusedExperts(ModelModule module, IReadOnlyList<QuantizerState> states)
    {
        var units = new List<ExpertUnitPlan>();
        foreach (var group in states.Where(s => s.Quantizer.Role == QuantizerRole.Weight).GroupBy(s => s.Quantizer.Projection!))
        {
            var input = states.Single(s => s.Quantizer.Role == QuantizerRole.Input && s.Quantizer.Projection == group.Key);
            long inFeatures = module.Parameters[group.Key].Shape[^1];
            foreach (var weight in group)
            {
                var (decision, _) = Decide(module, weight, input, inFeatures);
                units.Add(new ExpertUnitPlan(weight.Quantizer.Expert!.Value, group.Key, decision, weight, input));
            }
        }
        var decisions = units.Select(u => u.Decision).Distinct().ToList();
        var formats = decisions.Where(d => d.IsQuantized()).ToList();
        if (formats.Count > 1)
            throw new ModelOptException(QuantizationErrorIds.FusedExpertsFormatsMixed, ErrorKind.InvalidArgument,
                $"The recipe quantizes the experts of '{module.Name}' in {string.Join(" and ", formats.Select(f => f.QuantAlgo()))}; a fused experts " +
                "container is one layer to ModelOpt's config (one quantized_layers entry) and to the engines' MoE kernels. Give all its " +
                "expert projections one format.", module.Name);
        var first = units[0];
        if (decisions.Count == 1)
        {
            var (_, why) = Decide(module, first.Weight, first.Input, module.Parameters[first.Projection].Shape[^1]);
            return new ModulePlan(module, decisions[0], $"all {units.Count} expert projections: {why}", first.Weight.DecidedBy, states, units);
        }
        string mix = string.Join(", ", units.GroupBy(u => u.Decision).Select(g => $"{g.Count()} {g.Key}"));
        return new ModulePlan(module, QuantDecision.Mixed, $"expert projections differ: {mix}", null, states, units);
    }

    /// <summary>
    /// The decision for one weight quantizer and its input quantizer, by ModelOpt's format rules
    /// (<c>get_quantization_format</c>): NVFP4 weights give NVFP4 (W4A4) or W4A16_NVFP4 by the input quantizer; FP8
    /// per-tensor weights give FP8, whose input must be FP8 too. Other combinations (W4A8, FP8 weight-only, …) are refused.
    /// </summary>
    private static (QuantDecision, string) Decide(ModelModule module, QuantizerState weight, QuantizerState input, long inFeatures)
    {
        if (!weight.Enabled) return (QuantDecision.Unquantized, weight.Explain());
        var weightFormat = CheckFormat(module, weight);
        // The export scales a weight by its own max |w|; a pinned weight amax would be a different checkpoint than ModelOpt's.
        if (weightFormat.PinnedAmax is not null)
            throw Unsupported(module, weight, "a weight's amax is its own max |w|; constant_amax and use_constant_amax pin input and KV-cache quantizers");
        if (weightFormat.IsFp8PerTensor)
        {
            if (!input.Enabled)
                throw new ModelOptException(QuantizationErrorIds.Fp8WithoutInputQuantizer, ErrorKind.InvalidArgument,
                    $"Quantizer '{weight.Name}' is FP8 ({weight.Explain()}) but '{input.Name}' is disabled ({input.Explain()}): ModelOpt would write " +
                    "FP8 weights without an input_scale, which the engines' FP8 path cannot load. Enable the input quantizer with FP8 too.", module.Name);
            if (!CheckInputFormat(module, input).IsFp8PerTensor)
                throw Unsupported(module, input, "with FP8 weights the input quantizer must be FP8 per tensor too");
            return (QuantDecision.Fp8, $"{weight.Explain()} (FP8)");
        }
        if (!weightFormat.IsNvfp4) throw Unsupported(module, weight, "weights are NVFP4 or FP8 per tensor");
        if (inFeatures % BlockSize != 0)
            return (QuantDecision.Unquantizable, $"{weight.Explain()}, but its input dimension {inFeatures} is not a multiple of {BlockSize}");
        if (!input.Enabled) return (QuantDecision.W4A16Nvfp4, $"{weight.Explain()}; inputs not quantized");
        if (!CheckInputFormat(module, input).IsNvfp4)
            throw Unsupported(module, input, "with NVFP4 weights the input quantizer must be NVFP4 too, or disabled (W4A16_NVFP4); W4A8 is not exported");
        return (QuantDecision.Nvfp4, weight.Explain());
    }

    private static QuantizerFormat CheckFormat(ModelModule module, QuantizerState state) =>
        state.Format ?? throw new ModelOptException(QuantizationErrorIds.QuantizerWithoutFormat, ErrorKind.InvalidArgument,
            $"Quantizer '{state.Name}' is enabled by {state.DecidedBy} but no entry gave it a format (cfg); add a cfg with NVFP4 or FP8 numerics.", module.Name);

    /// <summary>
    /// An enabled input quantizer's format. <c>use_constant_amax</c> is ModelOpt's KV-cache cast: on an input quantizer its
    /// export writes no <c>input_scale</c> (the quantizer has no <c>_amax</c>), a layer the engines cannot load.
    /// </summary>
    private static QuantizerFormat CheckInputFormat(ModelModule module, QuantizerState input)
    {
        var format = CheckFormat(module, input);
        if (format.UseConstantAmax)
            throw Unsupported(module, input, "use_constant_amax is for KV-cache quantizers (ModelOpt exports no input_scale for an input quantizer " +
                                             "with it); pin an input's amax with constant_amax instead");
        return format;
    }

    private static ModelOptException Unsupported(ModelModule module, QuantizerState state, string rule) =>
        new(QuantizationErrorIds.UnsupportedQuantizerFormat, ErrorKind.InvalidArgument,
            $"Quantizer '{state.Name}' is set to {state.Format} by {state.DecidedBy}; ModelOptPS exports NVFP4 (num_bits e2m1, " +
            $"block_sizes {{-1: 16, scale_bits: e4m3}}) and FP8 per tensor (num_bits e4m3, axis null): {rule}.", module.Name);
}
