using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The report of calibration statistics for a model, however they were obtained (one run, one shard, a merge of
/// shards): expert coverage and the warnings the user must see — too little data, idle experts, inputs calibration
/// never reached, KV-cache quantizers that saw only zeros, inputs too wide for headroom.
/// </summary>
public static class CalibrationReports
{
    /// <param name="data">Where the text came from, for messages.</param>
    /// <param name="samples">Sequences these statistics cover (a shard's, or the whole set's).</param>
    /// <param name="notes">Warnings of the caller's own, listed first.</param>
    public static CalibrationReport Build(HFModel model, CalibrationStatistics statistics, CalibrationSplit split, string data, int samples,
        TimeSpan duration, IEnumerable<string>? notes = null)
    {
        var plan = model.RequirePlan();
        var warnings = new List<string>(notes ?? []);
        if (split.Sequences < split.NumSamples)
            warnings.Add($"{data} gave only {split.Sequences} of the {split.NumSamples} requested sequences of {split.SequenceLength} tokens");

        var amax = statistics.MaxAmax;
        var coverage = statistics.TokensPerExpert
            .Select(kv => new ExpertCoverage(kv.Key, model.Modules.FirstOrDefault(m => m.Name.StartsWith(kv.Key, StringComparison.Ordinal))?.Layer, kv.Value))
            .OrderBy(c => c.Layer).ThenBy(c => c.Experts, StringComparer.Ordinal)
            .ToList();
        foreach (var c in coverage.Where(c => c.Idle.Length > 0))
            warnings.Add($"{c.Experts}: {c.Idle.Length} of {c.TokensPerExpert.Length} experts saw no calibration token (they get the layer's shared input scale; use more data or -AllExperts)");
        var uncalibrated = plan.CalibratedQuantizers.Where(q => !(amax.TryGetValue(q, out float a) && a > 0)).ToList();
        var kvCache = plan.KvCache.CalibratedQuantizers.Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        var outsideExperts = uncalibrated.Where(q => !kvCache.Contains(q) && !q.Contains(".experts.", StringComparison.Ordinal)).ToList();
        if (outsideExperts.Count > 0)
            warnings.Add($"{outsideExperts.Count} quantized module input(s) got no calibration data (modules calibration does not run, e.g. under mtp. or the vision tower): " +
                         $"{List(outsideExperts)}; export will refuse them");
        // Every attention block runs, so a KV quantizer without an amax saw only zeros (e.g. a zeroed k_proj/v_proj).
        var zeroKvCache = uncalibrated.Where(kvCache.Contains).ToList();
        if (zeroKvCache.Count > 0)
            warnings.Add($"{zeroKvCache.Count} KV-cache quantizer(s) measured only zeros, so their k/v scale would be 0: {List(zeroKvCache)}; " +
                         "export will refuse them (pin their amax with constant_amax, or use the cast mode, -KvCache Fp8Cast)");
        if (statistics.ActivationCalibrator == ActivationCalibrator.Headroom)
        {
            var noHeadroom = statistics.ActivationHistograms.Where(kv => HeadroomCalibrator.Compute(kv.Value, statistics.Headroom) is { NoHeadroom: true })
                .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            if (noHeadroom.Count > 0)
                warnings.Add($"{noHeadroom.Count} NVFP4 input(s) have a per-block amax range too wide for headroom at rho={statistics.Headroom.Rho:g}, " +
                             $"so their amax is the {statistics.Headroom.UpperPercentile:g}th percentile: {List(noHeadroom)}");
        }
        return new CalibrationReport
        {
            Model = model.Name, Data = data, Samples = samples, SequenceLength = split.SequenceLength,
            Tokens = statistics.Tokens, AllExperts = split.AllExperts, Duration = duration, QuantizersCalibrated = amax.Count,
            ExpertCoverage = coverage, Warnings = warnings, ActivationCalibrator = statistics.ActivationCalibrator,
            HessianUnits = statistics.HessianBlocks.Count, Split = split,
        };
    }

    private static string List(IReadOnlyList<string> names) => string.Join(", ", names.Take(5)) + (names.Count > 5 ? ", …" : "");
}
