using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// Where the amax of an activation quantizer (a Linear's input, a KV cache's k/v) comes from: the recipe's pinned value
/// (<c>constant_amax</c>, or 448 for <c>use_constant_amax</c>), which replaces calibration as in ModelOpt, else what
/// calibration measured under the quantizer's name.
/// </summary>
public sealed class ActivationAmaxes
{
    private readonly Dictionary<string, float> _pinned;
    private readonly CalibrationStatistics? _statistics;

    private ActivationAmaxes(Dictionary<string, float> pinned, CalibrationStatistics? statistics)
    {
        _pinned = pinned;
        _statistics = statistics;
    }

    public static ActivationAmaxes Of(QuantPlan plan, CalibrationStatistics? statistics)
    {
        var quantizers = plan.Modules.SelectMany(m => m.Quantizers.Where(q => q.Quantizer.Role == QuantizerRole.Input)
                .Concat(m.ExpertUnits.Select(u => u.Input)))
            .Concat(plan.KvCache.Layers.SelectMany(l => new[] { l.Key, l.Value }));
        var pinned = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var q in quantizers)
            if (q.Enabled && q.Format?.PinnedAmax is { } amax) pinned[q.Name] = amax;
        return new ActivationAmaxes(pinned, statistics);
    }

    /// <summary>True when the recipe pins this quantizer's amax (no calibration involved).</summary>
    public bool IsPinned(string quantizer) => _pinned.ContainsKey(quantizer);

    /// <summary>The pinned amax, else the calibrated one; false when neither exists. A calibrated amax that is not a
    /// finite number &gt;= 0 is refused (InputAmaxInvalid).</summary>
    public bool TryGet(string quantizer, out float amax)
    {
        if (_pinned.TryGetValue(quantizer, out amax)) return true;
        if (_statistics is null || !_statistics.InputAmax.TryGetValue(quantizer, out amax))
        {
            amax = 0f;
            return false;
        }
        if (!(float.IsFinite(amax) && amax >= 0))
            throw new ModelOptException("InputAmaxInvalid", ErrorKind.InvalidData,
                $"Calibration gave quantizer '{quantizer}' the amax {amax}; it must be a finite number >= 0.");
        return true;
    }
}
