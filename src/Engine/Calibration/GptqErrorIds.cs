namespace ModelOptPS.Engine.Calibration;

/// <summary>Stable error ids of GPTQ.</summary>
public static class GptqErrorIds
{
    /// <summary>perc_damp or block_size out of range.</summary>
    public const string InvalidGptqOptions = "InvalidGptqOptions";

    /// <summary>Weight or Hessian buffers that do not match the shape given.</summary>
    public const string GptqShapeMismatch = "GptqShapeMismatch";

    /// <summary>A NaN or Inf in the weight or the Hessian.</summary>
    public const string GptqNonFiniteInput = "GptqNonFiniteInput";
}
