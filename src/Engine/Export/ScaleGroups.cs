using System.Collections.Concurrent;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The shared-scale rules of the contract (shared/spec/checkpoint-contract.md, "Shared scales"): q/k/v of one
/// attention block and gate/up of one MLP or expert (Mixtral w1/w3) share one <c>weight_scale_2</c> (from the max of
/// their amax) and one <c>input_scale</c>; all experts of a layer share the gate/up input scale and the down input scale;
/// everything else stands alone. Consumers fuse these shards and break, or silently mis-scale, when they differ.
/// </summary>
public sealed class ScaleGroups
{
    private static readonly string[] QkvRoles = ["q_proj", "k_proj", "v_proj"];
    private static readonly string[] GateUpRoles = ["gate_proj", "up_proj"];

    private readonly Dictionary<WeightUnit, float> _weightAmax;
    private readonly Dictionary<WeightUnit, float> _inputAmax;

    private ScaleGroups(Dictionary<WeightUnit, float> weightAmax, Dictionary<WeightUnit, float> inputAmax, List<string> notes)
    {
        _weightAmax = weightAmax;
        _inputAmax = inputAmax;
        Notes = notes;
    }

    /// <summary>Things worth telling the user (experts that saw no calibration token, backfilled).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The amax <c>weight_scale_2</c> is derived from (the group's max |w|).</summary>
    public float WeightAmax(WeightUnit unit) => _weightAmax[unit];

    /// <summary>The input amax <c>input_scale</c> is derived from (the group's max), for W4A4 units.</summary>
    public float InputAmax(WeightUnit unit) => _inputAmax[unit];

    /// <summary>Weight sharing group: q/k/v of one block, gate/up of one MLP or expert; otherwise the unit alone.</summary>
    public static string WeightGroupKey(WeightUnit u) =>
        QkvRoles.Contains(u.Role) ? $"{u.Parent}|qkv" : GateUpRoles.Contains(u.Role) ? $"{u.Parent}|gate_up" : u.OutputPrefix;

    /// <summary>Input sharing group: the weight group, widened to every expert of the layer for expert units.</summary>
    public static string InputGroupKey(WeightUnit u) =>
        u.ExpertsContainer is { } container ? $"{container}|{(u.Role == "down_proj" ? "down" : "gate_up")}" : WeightGroupKey(u);

    /// <summary>
    /// Reads max |w| of every quantized weight (memory-mapped, in parallel) and takes group maxima; takes calibrated
    /// input amax per input quantizer and shares it the same way.
    /// </summary>
    public static ScaleGroups Compute(IReadOnlyList<WeightUnit> units, CalibrationStatistics? statistics, CancellationToken cancellationToken)
    {
        var quantized = units.Where(u => u.IsQuantized).ToList();
        var own = new ConcurrentDictionary<WeightUnit, float>();
        ParallelFailures.Run(() => Parallel.ForEach(quantized, new ParallelOptions { CancellationToken = cancellationToken }, u =>
        {
            using var bytes = u.Read();
            own[u] = Amax.ComputeFinite(u.OutputPrefix + ".weight", bytes.Span, u.DType);
        }));
        var weightAmax = new Dictionary<WeightUnit, float>();
        foreach (var group in quantized.GroupBy(WeightGroupKey))
        {
            float max = group.Max(u => own[u]);
            foreach (var u in group) weightAmax[u] = max;
        }

        var notes = new List<string>();
        var inputAmax = new Dictionary<WeightUnit, float>();
        foreach (var group in quantized.Where(u => u.Decision == QuantDecision.Nvfp4).GroupBy(InputGroupKey))
        {
            var measured = group.Select(u => u.InputQuantizer).Distinct()
                .Select(q => (Quantizer: q!, Found: statistics is not null && statistics.InputAmax.TryGetValue(q!, out float a), Amax: statistics?.InputAmax.GetValueOrDefault(q!) ?? 0f))
                .ToList();
            foreach (var bad in measured.Where(m => m.Found && !(float.IsFinite(m.Amax) && m.Amax >= 0)))
                throw new ModelOptException("InputAmaxInvalid", ErrorKind.InvalidData,
                    $"Calibration gave input quantizer '{bad.Quantizer}' the amax {bad.Amax}; it must be a finite number >= 0.");
            float max = measured.Where(m => m.Found).Select(m => m.Amax).DefaultIfEmpty(0f).Max();
            if (!(max > 0f))
                throw new ModelOptException("InputAmaxMissing", ErrorKind.InvalidData,
                    $"No positive calibrated input amax for {string.Join(", ", measured.Select(m => m.Quantizer).Take(4))}" +
                    (measured.Count > 4 ? $" and {measured.Count - 4} more" : "") +
                    "; without it input_scale would be 0 or NaN. Run Invoke-Calibration on data that reaches these modules, or choose W4A16_NVFP4.");
            var missing = measured.Where(m => !m.Found || m.Amax == 0f).Select(m => m.Quantizer).ToList();
            if (missing.Count > 0)
                notes.Add($"{missing.Count} input quantizer(s) saw no calibration data and take the shared value of their group " +
                          $"({group.Key}): {string.Join(", ", missing.Take(4))}{(missing.Count > 4 ? ", …" : "")}");
            foreach (var u in group) inputAmax[u] = max;
        }
        return new ScaleGroups(weightAmax, inputAmax, notes);
    }
}
