namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// How the per-tensor scale <c>amax / 2688</c> is rounded. The two orders differ by one ulp for about 22% of amax
/// values (spec §Weight quantization, step 2), so the choice decides whether a checkpoint matches ModelOpt's bytes.
/// </summary>
public enum GlobalScaleOrder
{
    /// <summary>
    /// <c>fl32(amax * fl32(1/2688))</c>: PyTorch divides a CUDA tensor by a Python float as a multiply by the reciprocal.
    /// Real ModelOpt checkpoints are calibrated and exported on CUDA, so this is the default.
    /// </summary>
    Cuda = 0,

    /// <summary><c>fl32(amax / 2688)</c>: PyTorch on the CPU divides exactly. For comparing against a CPU run.</summary>
    Cpu = 1,
}

/// <summary>
/// The NVFP4 per-tensor scales: <c>weight_scale_2</c> from a weight's amax and <c>input_scale</c> from a calibrated
/// activation amax. Both are <c>amax / (E2M1 max 6 × E4M3 max 448)</c>, rounded as <see cref="GlobalScaleOrder"/> says.
/// </summary>
public static class GlobalScale
{
    /// <summary>6 × 448: the largest E2M1 value times the largest E4M3 block scale.</summary>
    public const float Divisor = 2688f;

    /// <summary>
    /// <c>fl32(1/2688)</c> = 0x39C30C31, written as bits: a C# constant expression may be folded at higher precision,
    /// and a double-then-float rounding is not guaranteed to agree, so the value is pinned (a test re-derives it).
    /// </summary>
    public static readonly float Reciprocal = BitConverter.UInt32BitsToSingle(0x39C30C31u);

    /// <summary>
    /// <c>weight_scale_2</c> for a tensor (or fused group) whose largest magnitude is <paramref name="amax"/>:
    /// the plain formula, with no special case (amax 0 gives 0; see <see cref="ForWeight"/>).
    /// </summary>
    public static float FromAmax(float amax, GlobalScaleOrder order = GlobalScaleOrder.Cuda) => order switch
    {
        // Each C# float operation is one IEEE binary32 operation (RyuJIT uses SSE, never x87 extended precision).
        GlobalScaleOrder.Cuda => amax * Reciprocal,
        GlobalScaleOrder.Cpu => amax / Divisor,
        _ => throw new ArgumentOutOfRangeException(nameof(order)),
    };

    /// <summary>
    /// <c>weight_scale_2</c> as ModelOptPS writes it: <see cref="FromAmax"/>, except that an all-zero tensor
    /// (amax 0, where ModelOpt would divide 0 by 0 and write NaN block scales) gets <c>fl32(1/2688)</c>, the scale of amax 1.
    /// </summary>
    public static float ForWeight(float amax, GlobalScaleOrder order = GlobalScaleOrder.Cuda) =>
        amax == 0f ? Reciprocal : FromAmax(amax, order);

    /// <summary>
    /// <c>input_scale</c> from a calibrated activation amax, same formula and order rule as the weight scale.
    /// An amax that is not a finite number above zero is refused (ModelOpt asserts at export): the caller backfills it
    /// per the calibration rules first.
    /// </summary>
    public static float InputScale(float inputAmax, string moduleName, GlobalScaleOrder order = GlobalScaleOrder.Cuda)
    {
        ActivationAmax.Require(inputAmax, moduleName);
        return FromAmax(inputAmax, order);
    }
}
