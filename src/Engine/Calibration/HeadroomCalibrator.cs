namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// ModelOpt's <c>NVFP4ActHeadroomCalibrator.compute_amax</c> over a <see cref="BlockAmaxHistogram"/>:
/// <c>upper</c> = the per-block amax at <c>upper_percentile</c> (the literal max at 100), <c>anchor</c> = the one at
/// <c>anchor_percentile</c> ignoring bins below <c>upper / 1e6</c>, and <c>amax = rho × anchor</c> when that exceeds
/// <c>upper</c>, else <c>upper</c> (no headroom left: the range is too wide). Empty or collapsed percentiles fall back
/// to the max. Percentiles are bin centres, as ModelOpt keeps them so scales stay comparable across runs.
/// </summary>
public static class HeadroomCalibrator
{
    /// <summary>Bins below upper / this are ignored when locating the anchor (ModelOpt's _ANCHOR_FLOOR_RATIO).</summary>
    public const double AnchorFloorRatio = 1e6;

    /// <summary>The headroom amax, or the max when the histogram gives no usable percentile; null when nothing was seen.</summary>
    public static float? Amax(BlockAmaxHistogram histogram, HeadroomSettings settings) => Compute(histogram, settings)?.Amax;

    /// <summary>The headroom amax with how it was reached; null when nothing was seen.</summary>
    public static HeadroomAmax? Compute(BlockAmaxHistogram histogram, HeadroomSettings settings)
    {
        if (histogram.Max is not { } max) return null;
        double? upper = settings.UpperPercentile >= 100 ? max : Percentile(histogram.Counts, settings.UpperPercentile);
        double? anchor = upper is > 0 ? Percentile(histogram.Counts, settings.AnchorPercentile, upper.Value / AnchorFloorRatio) : null;
        if (upper is not > 0 || anchor is not > 0) return new HeadroomAmax(max, anchor, upper, FellBackToMax: true, NoHeadroom: false);
        double headroom = settings.Rho * anchor.Value;
        return headroom > upper.Value
            ? new HeadroomAmax((float)headroom, anchor, upper, FellBackToMax: false, NoHeadroom: false)
            : new HeadroomAmax((float)upper.Value, anchor, upper, FellBackToMax: false, NoHeadroom: true);
    }

    /// <summary>
    /// ModelOpt's <c>_percentile</c>: the centre of the first bin whose cumulative count reaches
    /// <paramref name="percentile"/>% of the total (torch.searchsorted, left side), bins below the bin of
    /// <paramref name="floorValue"/> zeroed first; null for an empty histogram. Counts are summed exactly (ModelOpt sums
    /// float32 copies, which only differs beyond 2^24 blocks); the target is rounded to float32 as there.
    /// </summary>
    public static double? Percentile(IReadOnlyList<long> counts, double percentile, double? floorValue = null)
    {
        int floorBin = floorValue is > 0 ? BlockAmaxHistogram.BinIndex(MathF.Log2((float)floorValue.Value)) : 0;
        long total = 0;
        for (int b = floorBin; b < counts.Count; b++) total += counts[b];
        if (total <= 0) return null;
        // torch computes the target in float32 (a Python float times a float32 sum); so do we, so ties land alike.
        float target = (float)(percentile / 100.0) * total;
        long cumulative = 0;
        int bin = counts.Count - 1;
        for (int b = floorBin; b < counts.Count; b++)
        {
            cumulative += counts[b];
            if (cumulative >= target) { bin = b; break; }
        }
        return BlockAmaxHistogram.BinValue(bin);
    }
}
