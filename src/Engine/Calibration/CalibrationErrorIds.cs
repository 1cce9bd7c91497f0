namespace ModelOptPS.Engine.Calibration;

/// <summary>The stable error ids of calibration.</summary>
public static class CalibrationErrorIds
{
    /// <summary>An observed activation contains NaN or Inf, so no scale can be derived from it.</summary>
    public const string NonFiniteActivation = nameof(NonFiniteActivation);

    /// <summary>nvfp4_act_headroom parameters outside the ranges ModelOpt accepts.</summary>
    public const string InvalidHeadroomSettings = nameof(InvalidHeadroomSettings);
}
