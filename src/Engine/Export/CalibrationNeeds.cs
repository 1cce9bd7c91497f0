using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>Which scales of a plan only calibration can give, in words for the CalibrationRequired message.</summary>
internal static class CalibrationNeeds
{
    public static string Describe(QuantPlan plan)
    {
        var decisionOf = plan.Modules
            .SelectMany(m => m.ExpertUnits.Select(u => (u.Input.Name, u.Decision))
                .Concat(m.Quantizers.Where(q => q.Quantizer.Role == QuantizerRole.Input).Select(q => (q.Name, m.Decision))))
            .DistinctBy(x => x.Name)
            .ToDictionary(x => x.Name, x => x.Decision, StringComparer.Ordinal);
        var kv = plan.KvCache.CalibratedQuantizers.Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        var calibrated = plan.CalibratedQuantizers.Where(q => !kv.Contains(q)).ToList();
        int nvfp4 = calibrated.Count(q => decisionOf.GetValueOrDefault(q) == QuantDecision.Nvfp4);
        int fp8 = calibrated.Count(q => decisionOf.GetValueOrDefault(q) == QuantDecision.Fp8);
        var parts = new List<string>();
        if (nvfp4 > 0) parts.Add($"the input_scale of {nvfp4} NVFP4 (W4A4) input quantizer(s)");
        if (fp8 > 0) parts.Add($"the input_scale of {fp8} FP8 input quantizer(s)");
        if (kv.Count > 0) parts.Add($"the k_scale/v_scale of {kv.Count} KV-cache quantizer(s) (scaled FP8 KV cache)");
        if (plan.NeedsWeightCalibration)
            parts.Add($"the NVFP4 weights of {plan.Modules.Count(m => m.Algorithm is not null)} module(s), whose algorithm {plan.Algorithm} " +
                      "works on the calibration inputs (Max, Mse and MseFp8Sweep need none)");
        return string.Join(", ", parts);
    }
}
