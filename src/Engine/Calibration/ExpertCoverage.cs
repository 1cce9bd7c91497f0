namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// How the calibration tokens spread over one MoE layer's experts. Experts that saw no token get the layer's shared
/// input scale at export; they are listed so the user can decide to calibrate with more data or -AllExperts.
/// </summary>
public sealed record ExpertCoverage(string Experts, int? Layer, long[] TokensPerExpert)
{
    public long Min => TokensPerExpert.Min();

    public long Max => TokensPerExpert.Max();

    public double Median
    {
        get
        {
            var sorted = TokensPerExpert.Order().ToArray();
            int n = sorted.Length;
            return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        }
    }

    /// <summary>Indices of experts no token was routed to.</summary>
    public int[] Idle => TokensPerExpert.Select((count, e) => (count, e)).Where(x => x.count == 0).Select(x => x.e).ToArray();

    public override string ToString() =>
        $"{Experts}: tokens per expert min {Min} / median {Median} / max {Max}" + (Idle.Length > 0 ? $", idle: {string.Join(",", Idle)}" : "");
}
