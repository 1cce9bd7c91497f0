namespace ModelOptPS.Engine.Numerics;

/// <summary>Stable error ids raised by the NVFP4 numerics (runbooks and tests match on these strings).</summary>
public static class NumericsErrorIds
{
    /// <summary>A weight holds NaN or ±Inf; the message names the tensor and the first bad flat index.</summary>
    public const string NonFiniteWeight = nameof(NonFiniteWeight);

    /// <summary>The input (last) dimension is not a multiple of the 16-element NVFP4 block.</summary>
    public const string Nvfp4ShapeNotBlockAligned = nameof(Nvfp4ShapeNotBlockAligned);

    /// <summary>Source or destination spans do not match the shape and dtype given.</summary>
    public const string Nvfp4BufferSizeMismatch = nameof(Nvfp4BufferSizeMismatch);

    /// <summary>The source dtype is not one NVFP4 quantizes from (BF16, F16, F32).</summary>
    public const string Nvfp4UnsupportedDType = nameof(Nvfp4UnsupportedDType);

    /// <summary>A given global amax is negative, NaN or infinite.</summary>
    public const string InvalidGlobalAmax = nameof(InvalidGlobalAmax);

    /// <summary>The amax is so small (fp32 denormal range) that amax/2688 rounds to 0 and no finite scale exists.</summary>
    public const string WeightScaleUnderflow = nameof(WeightScaleUnderflow);

    /// <summary>An activation amax is zero, negative, missing or non-finite when an input scale is asked for.</summary>
    public const string InvalidInputAmax = nameof(InvalidInputAmax);
}
