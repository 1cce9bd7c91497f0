namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// One quantizer's headroom result: the amax, the anchor and upper percentiles it came from, and the two cases ModelOpt
/// singles out: no usable percentile (the max is used) and no headroom (rho × anchor ≤ upper: the per-block amax range
/// is too wide for rho, so the amax is the upper percentile and nothing is left above it).
/// </summary>
public readonly record struct HeadroomAmax(float Amax, double? Anchor, double? Upper, bool FellBackToMax, bool NoHeadroom);
