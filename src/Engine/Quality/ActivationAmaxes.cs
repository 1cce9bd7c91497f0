using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// Where the amax of an activation quantizer (a Linear's input, a KV cache's k/v) comes from: the recipe's pinned value
/// (<c>constant_amax</c>, or 448 for <c>use_constant_amax</c>), which replaces calibration as in ModelOpt, else what
/// calibration measured under the quantizer's name. (The export has the same rule on its branch, issue11-export:
/// one of the two goes when both are merged.)
/// </summary>
internal sealed class ActivationAmaxes
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

    /// <summary>The pinned amax, else the calibrated one; false when neither exists.</summary>
    public bool TryGet(string quantizer, out float amax)
    {
        if (_pinned.TryGetValue(quantizer, out amax)) return true;
        if (_statistics is not null && _statistics.InputAmax.TryGetValue(quantizer, out amax)) return true;
        amax = 0f;
        return false;
    }

    /// <summary>The largest amax of <paramref name="quantizers"/> (one quantizer, or the experts of a layer that share one scale).</summary>
    /// <exception cref="ModelOptException">InputAmaxMissing when none has an amax above zero.</exception>
    public float Max(IReadOnlyCollection<string> quantizers, string path)
    {
        float max = quantizers.Select(q => TryGet(q, out float a) ? a : 0f).DefaultIfEmpty(0f).Max();
        return max > 0f ? max : throw new ModelOptException("InputAmaxMissing", ErrorKind.InvalidData,
            $"No positive calibrated amax for {string.Join(", ", quantizers.Take(4))}{(quantizers.Count > 4 ? $" and {quantizers.Count - 4} more" : "")}; " +
            "without it their FP8 scale cannot be derived. Run Invoke-Calibration on data that reaches them.", path);
    }
}
