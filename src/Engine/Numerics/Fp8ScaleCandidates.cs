namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The block scales an FP8 scale sweep chooses among: ModelOpt's <c>fp8_scale_candidates</c>
/// (<c>modelopt/torch/kernels/quantization/gemm/_fp8_scale_candidates.py</c>), the 126 positive finite E4M3FN values,
/// bytes 0x01 (2^-9) to 0x7E (448) in increasing order. ModelOpt keeps them as <c>value / 448</c> multipliers of the global
/// amax; ModelOptPS keeps the bytes themselves, since the byte is what the export writes.
/// <para>
/// Every candidate is <c>M × 2^E</c> with one of the 8 mantissas <c>M = 1 + k/8</c> (subnormals included: 3·2^-9 is
/// 1.5·2^-8). <see cref="MantissaIndex"/> and <see cref="InversePowerOfTwo"/> give that decomposition, which lets the sweep
/// divide each weight by 8 divisors instead of 126 (see <see cref="Fp8SweepKernel"/>).
/// </para>
/// </summary>
internal static class Fp8ScaleCandidates
{
    /// <summary>126: every positive finite E4M3FN value.</summary>
    public const int Count = 126;

    /// <summary>The candidates padded to a whole number of 16-lane groups with copies of the last (448), which can never win a first-minimum scan.</summary>
    public const int PaddedCount = 128;

    /// <summary>The E4M3 byte of candidate <paramref name="index"/> (0-based): 0x01 + index.</summary>
    public static byte Byte(int index) => (byte)(1 + Math.Min(index, Count - 1));

    /// <summary>The exact fp32 value of candidate <paramref name="index"/>.</summary>
    public static float Value(int index) => E4M3.ToFloat(Byte(index));

    /// <summary><c>k</c> of the candidate's mantissa <c>1 + k/8</c>.</summary>
    public static int MantissaIndex(int index)
    {
        float value = Value(index);
        return (int)((MathF.ScaleB(value, -MathF.ILogB(value)) - 1f) * 8f);
    }

    /// <summary><c>2^-E</c>, the exact power of two that turns a weight divided by <c>M·wsf2</c> into one divided by <c>M·2^E·wsf2</c>.</summary>
    public static float InversePowerOfTwo(int index) => MathF.ScaleB(1f, -MathF.ILogB(Value(index)));

    /// <summary>The mantissa <c>1 + k/8</c> of index <paramref name="k"/>.</summary>
    public static float Mantissa(int k) => 1f + k / 8f;
}
