using System.Text.RegularExpressions;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The activation amax an FP8 scale is derived from, per quantizer: the recipe's pinned amax (<c>constant_amax</c>,
/// <c>use_constant_amax</c>), else the calibration statistics; a per-expert Linear that no calibration token reached
/// takes the largest amax of the same projection in its layer's other experts, as ModelOpt's export fills it
/// (<c>set_expert_quantizer_amax</c> in modelopt/torch/export/layer_utils.py).
/// </summary>
internal sealed partial class ActivationAmaxes(HFModel model, QuantPlan plan)
{
    private readonly Dictionary<string, float> _pinned = plan.Modules
        .SelectMany(m => m.Quantizers.Concat(m.ExpertUnits.Select(u => u.Input)))
        .Concat(plan.KvCache.Layers.SelectMany(l => new[] { l.Key, l.Value }))
        .Where(q => q.Format?.PinnedAmax is not null)
        .DistinctBy(q => q.Name)
        .ToDictionary(q => q.Name, q => q.Format!.PinnedAmax!.Value, StringComparer.Ordinal);

    [GeneratedRegex(@"^(?<container>.+\.experts)\.\d+\.(?<projection>[^.]+)\.input_quantizer$")]
    private static partial Regex PerExpertInput();

    /// <exception cref="ModelOptException">InputAmaxMissing when nothing gives the quantizer a positive amax.</exception>
    public float Of(string quantizer)
    {
        if (_pinned.TryGetValue(quantizer, out float pinned)) return pinned;
        var measured = model.Statistics?.InputAmax ?? new Dictionary<string, float>();
        if (measured.TryGetValue(quantizer, out float own) && own > 0) return own;
        if (PerExpertInput().Match(quantizer) is { Success: true } expert)
        {
            float siblings = measured
                .Where(kv => PerExpertInput().Match(kv.Key) is { Success: true } other
                    && other.Groups["container"].Value == expert.Groups["container"].Value
                    && other.Groups["projection"].Value == expert.Groups["projection"].Value)
                .Select(kv => kv.Value).DefaultIfEmpty(0f).Max();
            if (siblings > 0) return siblings;
        }
        throw new ModelOptException("InputAmaxMissing", ErrorKind.InvalidData,
            $"No positive calibrated amax for '{quantizer}'; without it its FP8 scale cannot be derived. Run Invoke-Calibration on data that reaches it.",
            model.Path);
    }
}
