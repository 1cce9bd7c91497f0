using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The parameters of ModelOpt's <c>nvfp4_act_headroom</c> algorithm, with its defaults (recipe
/// <c>general/ptq/nvfp4_act_headroom-kv_fp8_cast</c>: anchor_percentile 1, upper_percentile 99.99, rho 16384).
/// </summary>
public sealed record HeadroomSettings
{
    /// <summary>FP8 E4M3 normal dynamic range 448 / 2^-6: rho must stay below it (ModelOpt's limit).</summary>
    public const double Fp8NormalDynamicRange = 28672.0;

    /// <summary>Percentile of the per-block amaxes used as the anchor, in (0, 100].</summary>
    public double AnchorPercentile { get; init; } = 1.0;

    /// <summary>Percentile used as the top of the calibrated range, in (0, 100]; 100 = the literal observed max.</summary>
    public double UpperPercentile { get; init; } = 99.99;

    /// <summary>Headroom factor applied to the anchor, in (0, 28672).</summary>
    public double Rho { get; init; } = 16384.0;

    public static HeadroomSettings Default { get; } = new();

    /// <summary>Refuses parameters ModelOpt refuses.</summary>
    public HeadroomSettings Validated()
    {
        if (!(Rho > 0 && Rho < Fp8NormalDynamicRange)) throw Invalid($"rho must be in (0, {Fp8NormalDynamicRange}); got {Rho}");
        if (!(AnchorPercentile > 0 && AnchorPercentile <= 100)) throw Invalid($"anchor_percentile must be in (0, 100]; got {AnchorPercentile}");
        if (!(UpperPercentile > 0 && UpperPercentile <= 100)) throw Invalid($"upper_percentile must be in (0, 100]; got {UpperPercentile}");
        return this;
    }

    private static ModelOptException Invalid(string message) =>
        new(CalibrationErrorIds.InvalidHeadroomSettings, ErrorKind.InvalidArgument, $"nvfp4_act_headroom: {message}.");
}
