using System.Collections.Concurrent;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The shared-scale rule of the contract (shared/spec/checkpoint-contract.md, "Shared scales"): quantized NVFP4 Linears
/// that read the same input tensor (<see cref="InputSharing"/>, from the forward engine) and are quantized the same way
/// share one <c>weight_scale_2</c> (from the max of their amax) and one <c>input_scale</c> (the max input amax): q/k/v,
/// gate/up of an MLP, shared expert or expert (Mixtral w1/w3), Qwen3.5's in_proj_qkv/z (with b/a when quantized),
/// Qwen3-Next's in_proj_qkvz with in_proj_ba. FP8 units are not unified (ModelOpt's <c>_fuse_shared_input_modules</c>
/// skips FP8; engines requantize a merged FP8 layer to the max scale themselves): each keeps its own amax, except a
/// fused expert's gate and up, which come from one weight quantizer (<c>gate_up_proj_weight_quantizers.e</c>). All
/// experts of a layer share the gate/up input amax and the down input amax, whatever the format (ModelOpt's
/// <c>set_expert_quantizer_amax</c>). Consumers merge these shards and break, or silently mis-scale, when they differ.
/// </summary>
public sealed class ScaleGroups
{
    private readonly Dictionary<WeightUnit, float> _weightAmax;
    private readonly Dictionary<WeightUnit, float> _inputAmax;

    private ScaleGroups(Dictionary<WeightUnit, float> weightAmax, Dictionary<WeightUnit, float> inputAmax,
        IReadOnlyList<IReadOnlyList<string>> weightGroups, IReadOnlyList<IReadOnlyList<string>> inputGroups, List<string> notes)
    {
        _weightAmax = weightAmax;
        _inputAmax = inputAmax;
        WeightGroups = weightGroups;
        InputGroups = inputGroups;
        Notes = notes;
    }

    /// <summary>Things worth telling the user (experts that saw no calibration token, backfilled).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The units (export names) that share one weight amax (<c>weight_scale_2</c>, FP8 <c>weight_scale</c>), one list per group, singletons included.</summary>
    public IReadOnlyList<IReadOnlyList<string>> WeightGroups { get; }

    /// <summary>The units with quantized inputs (NVFP4 W4A4, FP8; export names) that share one input amax, one list per group.</summary>
    public IReadOnlyList<IReadOnlyList<string>> InputGroups { get; }

    /// <summary>The amax <c>weight_scale_2</c> (FP8: <c>weight_scale</c>) is derived from (the group's max |w|).</summary>
    public float WeightAmax(WeightUnit unit) => _weightAmax[unit];

    /// <summary>The input amax <c>input_scale</c> is derived from (the group's max), for units with quantized inputs.</summary>
    public float InputAmax(WeightUnit unit) => _inputAmax[unit];

    /// <summary>
    /// Reads max |w| of every quantized weight (memory-mapped, in parallel) and takes group maxima; takes the input amax
    /// per input quantizer (pinned by the recipe, else calibrated) and shares it the same way.
    /// </summary>
    public static ScaleGroups Compute(HFModel model, IReadOnlyList<WeightUnit> units, CancellationToken cancellationToken)
    {
        var sharing = InputSharing.Of(model);
        var amaxes = ActivationAmaxes.Of(model.RequirePlan(), model.Statistics);
        // Only members quantized alike share: ModelOpt refuses to fuse a group whose formats differ, and the planner
        // refuses a consumer's merged layer whose shards differ (MergedLayerPartiallyQuantized).
        string WeightGroupKey(WeightUnit u) => u.Decision == QuantDecision.Fp8
            ? u.Module.Kind == ModuleKind.FusedExperts && u.Role != "down_proj" ? $"{u.Module.Name}.{u.Expert} gate_up" : u.OutputPrefix
            : sharing.InputOf(u.OutputPrefix) is { } input ? $"input {input} {u.Decision}" : u.OutputPrefix;
        string InputGroupKey(WeightUnit u) =>
            u.ExpertsContainer is { } container ? $"{container}|{(u.Role == "down_proj" ? "down" : "gate_up")}"
            : u.Decision == QuantDecision.Fp8 ? u.OutputPrefix : WeightGroupKey(u);

        var quantized = units.Where(u => u.IsQuantized).ToList();
        var own = new ConcurrentDictionary<WeightUnit, float>();
        ParallelFailures.Run(() => Parallel.ForEach(quantized, new ParallelOptions { CancellationToken = cancellationToken }, u =>
        {
            using var bytes = u.Read();
            own[u] = Amax.ComputeFinite(u.OutputPrefix + ".weight", bytes.Span, u.DType);
        }));
        var weightAmax = new Dictionary<WeightUnit, float>();
        var weightGroups = quantized.GroupBy(WeightGroupKey).ToList();
        foreach (var group in weightGroups)
        {
            float max = group.Max(u => own[u]);
            foreach (var u in group) weightAmax[u] = max;
        }

        var notes = new List<string>();
        if (sharing.Note is { } inferred) notes.Add(inferred);
        var inputAmax = new Dictionary<WeightUnit, float>();
        var inputGroups = quantized.Where(u => u.Decision.QuantizesInputs()).GroupBy(InputGroupKey).ToList();
        foreach (var group in inputGroups)
        {
            var measured = group.Select(u => u.InputQuantizer).Distinct()
                .Select(q => (Quantizer: q!, Found: amaxes.TryGet(q!, out float a), Amax: a))
                .ToList();
            float max = measured.Where(m => m.Found).Select(m => m.Amax).DefaultIfEmpty(0f).Max();
            if (!(max > 0f))
                throw new ModelOptException("InputAmaxMissing", ErrorKind.InvalidData,
                    $"No positive calibrated input amax for {string.Join(", ", measured.Select(m => m.Quantizer).Take(4))}" +
                    (measured.Count > 4 ? $" and {measured.Count - 4} more" : "") +
                    "; without it input_scale would be 0 or NaN. Run Invoke-Calibration on data that reaches these modules, or choose a weight-only format for them (W4A16_NVFP4).");
            var missing = measured.Where(m => !m.Found || m.Amax == 0f).Select(m => m.Quantizer).ToList();
            if (missing.Count > 0)
                notes.Add($"{missing.Count} input quantizer(s) saw no calibration data and take the shared value of their group " +
                          $"({group.First().OutputPrefix}{(group.Count() > 1 ? $" and {group.Count() - 1} more" : "")}): {string.Join(", ", missing.Take(4))}{(missing.Count > 4 ? ", …" : "")}");
            foreach (var u in group) inputAmax[u] = max;
        }
        return new ScaleGroups(weightAmax, inputAmax, Names(weightGroups), Names(inputGroups), notes);
    }

    private static List<IReadOnlyList<string>> Names(IEnumerable<IGrouping<string, WeightUnit>> groups) =>
        groups.Select(g => (IReadOnlyList<string>)g.Select(u => u.OutputPrefix).ToList()).ToList();
}
