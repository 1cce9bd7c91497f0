namespace ModelOptPS.Engine.Numerics;

/// <summary>Stable error ids raised by the NVFP4 and FP8 numerics (runbooks and tests match on these strings).</summary>
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

    /// <summary>A given amax (NVFP4 global amax, FP8 weight amax) is negative, NaN or infinite.</summary>
    public const string InvalidGlobalAmax = nameof(InvalidGlobalAmax);

    /// <summary>
    /// The amax is so small that the per-tensor scale (NVFP4 amax/2688, FP8 amax/448, or the FP8 scale cast to an F16
    /// weight's dtype in CUDA order) rounds to 0 and no finite scale exists.
    /// </summary>
    public const string WeightScaleUnderflow = nameof(WeightScaleUnderflow);

    /// <summary>An activation amax is zero, negative, missing or non-finite when an input scale is asked for.</summary>
    public const string InvalidInputAmax = nameof(InvalidInputAmax);

    /// <summary>The source dtype is not one FP8 quantizes from (BF16, F16, F32).</summary>
    public const string Fp8UnsupportedDType = nameof(Fp8UnsupportedDType);

    /// <summary>Source, destination or code spans do not match the FP8 shape and dtype given.</summary>
    public const string Fp8BufferSizeMismatch = nameof(Fp8BufferSizeMismatch);

    /// <summary>
    /// Some weights divided by the FP8 scale reach the E4M3 NaN code (|w / scale| past 464): the given amax is below
    /// the tensor's max |w|, or an F16 scale lost its precision. Never written silently.
    /// </summary>
    public const string Fp8CodeOverflow = nameof(Fp8CodeOverflow);

    /// <summary>A given NVFP4 block scale byte is not a positive finite E4M3 value (0x00, a NaN code, or negative).</summary>
    public const string InvalidBlockScale = nameof(InvalidBlockScale);

    /// <summary>A given <c>weight_scale_2</c> is not a finite number above zero.</summary>
    public const string InvalidWeightScale2 = nameof(InvalidWeightScale2);

    /// <summary>Local-Hessian blocks do not have the shape [cols/16, 16, 16] or hold a NaN or infinity.</summary>
    public const string InvalidHessianBlocks = nameof(InvalidHessianBlocks);
}
