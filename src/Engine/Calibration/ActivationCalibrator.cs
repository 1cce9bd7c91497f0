namespace ModelOptPS.Engine.Calibration;

/// <summary>How the amax of an NVFP4 activation (input) quantizer is computed from the calibration statistics.</summary>
public enum ActivationCalibrator
{
    /// <summary>ModelOpt's max calibration: the largest |x| seen.</summary>
    Max,

    /// <summary>
    /// ModelOpt's <c>nvfp4_act_headroom</c>: <c>max(rho × anchor, upper)</c> over the log2 histogram of per-16-element
    /// block amaxes (see <see cref="HeadroomCalibrator"/>). Only NVFP4 input quantizers; FP8 inputs and the KV cache stay max.
    /// </summary>
    Headroom,
}
