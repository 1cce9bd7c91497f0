using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// ModelOpt's FP8 per-tensor format (quant_utils.py <c>get_scaling_factor</c>, <c>to_quantized_weight</c>, ModelOpt
/// a2fbac7): E4M3FN values, one fp32 scale per tensor, <c>weight = e4m3(w / weight_scale)</c> with
/// <c>weight_scale = amax / 448</c>, bit for bit as ModelOpt's export produces them (helper-notes/FP8-FACTS.md).
/// Sources are raw little-endian BF16/F16/F32 bytes [rows, cols]; the E4M3 bytes go to a caller-provided span of
/// rows × cols bytes. Also the activation scales (<c>input_scale</c>, KV <c>k_scale</c>/<c>v_scale</c>) and the
/// dequantization and fake quantization the quality measurements use.
/// </summary>
public static class Fp8
{
    /// <summary>The largest E4M3 magnitude, 448: the divisor of every FP8 scale.</summary>
    public const float MaxValue = E4M3.MaxValue;

    /// <summary>
    /// <c>fl32(1/448)</c> = 0x3B124925, pinned as bits like <see cref="GlobalScale.Reciprocal"/> (a test re-derives it):
    /// CUDA divides a tensor by the Python float 448.0 as a multiply by this reciprocal.
    /// </summary>
    public static readonly float Reciprocal = BitConverter.UInt32BitsToSingle(0x3B124925u);

    /// <summary>
    /// <c>weight_scale</c>: ModelOpt computes <c>torch.tensor(amax.item() / 448)</c>, a Python (double) division then
    /// one rounding to fp32, on every device. An all-zero tensor (amax 0, where ModelOpt would write a zero scale and NaN
    /// codes) gets the scale of amax 1; callers warn.
    /// </summary>
    public static float WeightScale(float amax) => (float)((double)(amax == 0f ? 1f : amax) / 448.0);

    /// <summary>
    /// An activation scale (FP8 <c>input_scale</c>; KV <c>k_scale</c>/<c>v_scale</c>): <c>amax.float() / 448.0</c> on a
    /// tensor. CUDA order multiplies by <see cref="Reciprocal"/>, CPU order divides exactly. An amax that is not a finite
    /// number above zero is refused with <see cref="NumericsErrorIds.InvalidInputAmax"/> naming
    /// <paramref name="quantizerName"/>.
    /// </summary>
    public static float ActivationScale(float amax, string quantizerName, GlobalScaleOrder order = GlobalScaleOrder.Cuda)
    {
        ActivationAmax.Require(amax, quantizerName);
        return order switch
        {
            GlobalScaleOrder.Cuda => amax * Reciprocal,
            GlobalScaleOrder.Cpu => amax / MaxValue,
            _ => throw new ArgumentOutOfRangeException(nameof(order)),
        };
    }

    /// <summary>
    /// What a weight of <paramref name="dtype"/> is divided by: on CUDA the 0-d fp32 scale is cast to the weight's dtype
    /// when loaded (<c>gpu_kernel_with_scalars</c>), so <c>float(T(s))</c>; on the CPU the reduced-float path divides by
    /// the fp32 scale itself. Equal for F32.
    /// </summary>
    internal static float Divisor(float weightScale, DType dtype, GlobalScaleOrder order) => (order, dtype) switch
    {
        (GlobalScaleOrder.Cpu, _) or (_, DType.F32) => weightScale,
        (GlobalScaleOrder.Cuda, DType.BF16) => Bf16Rounding.Round(weightScale),
        (GlobalScaleOrder.Cuda, DType.F16) => F16Rounding.Round(weightScale),
        _ => throw new ArgumentOutOfRangeException(nameof(order)),
    };

    /// <summary>
    /// Quantizes one weight: <c>code = e4m3(T(w / divisor))</c> per element (T: rounding to the weight's dtype),
    /// <paramref name="destination"/> getting rows × cols E4M3 bytes, row-major like the source.
    /// </summary>
    /// <exception cref="ModelOptException">
    /// <see cref="NumericsErrorIds.NonFiniteWeight"/> (the first NaN/Inf index), <see cref="NumericsErrorIds.Fp8UnsupportedDType"/>,
    /// <see cref="NumericsErrorIds.Fp8BufferSizeMismatch"/>, <see cref="NumericsErrorIds.InvalidGlobalAmax"/> (a given
    /// amax), <see cref="NumericsErrorIds.WeightScaleUnderflow"/>, <see cref="NumericsErrorIds.Fp8CodeOverflow"/> (some
    /// code would be NaN). On an exception the destination holds garbage.
    /// </exception>
    public static Fp8Result Quantize(
        string tensorName, ReadOnlySpan<byte> source, DType dtype, int rows, int cols, Span<byte> destination, Fp8Options? options = null) =>
        Quantize(tensorName, source, dtype, dtype, rows, cols, destination, options ?? Fp8Options.Default);

    /// <summary><c>fp32(e4m3) × scale</c> for each code (ModelOpt's dequantization; NaN codes give NaN).</summary>
    public static void Dequantize(ReadOnlySpan<byte> codes, float scale, Span<float> destination)
    {
        if (codes.Length != destination.Length)
        {
            throw new ModelOptException(
                NumericsErrorIds.Fp8BufferSizeMismatch,
                ErrorKind.InvalidArgument,
                $"FP8 dequantize: {codes.Length} codes but {destination.Length} outputs.");
        }

        // 256 products, one per code: each output is exactly the product its code would give.
        Span<float> table = stackalloc float[256];
        for (int code = 0; code < 256; code++)
        {
            table[code] = E4M3.ToFloat((byte)code) * scale;
        }

        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = table[codes[i]];
        }
    }

    /// <summary>
    /// Static FP8 activation quantization as vLLM computes it (csrc/quantization/fp8 <c>scaled_fp8_quant</c>: one
    /// <c>inv = 1.0f / scale</c>, then <c>scaled_fp8_conversion&lt;true&gt;</c>): <c>x × inv</c>, clamped to ±448 with
    /// fminf/fmaxf (so NaN becomes 448), cast to E4M3 (round to nearest even), then dequantized as <c>× scale</c>.
    /// For the quality emulation of FP8 <c>input_scale</c> and KV scales.
    /// </summary>
    public static void FakeQuantizeInPlace(Span<float> values, float scale)
    {
        if (!(scale > 0f) || !float.IsFinite(scale))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "An FP8 scale is a finite number above zero.");
        }

        float inverse = 1f / scale;
        for (int i = 0; i < values.Length; i++)
        {
            float x = values[i] * inverse;
            x = x < MaxValue ? x : MaxValue;   // fminf(x, 448): NaN → 448
            x = x > -MaxValue ? x : -MaxValue; // fmaxf(x, -448)
            values[i] = E4M3.ToFloat(E4M3.FromFloat(x)) * scale;
        }
    }

    /// <summary>
    /// Fake quantization of a weight for quality measurements: the bytes <see cref="Quantize"/> would export, dequantized
    /// into <paramref name="destination"/> (rows × cols floats).
    /// </summary>
    public static Fp8Result FakeQuantizeWeight(
        string tensorName, ReadOnlySpan<byte> source, DType dtype, int rows, int cols, Span<float> destination, Fp8Options? options = null)
    {
        if (destination.Length != (long)rows * cols)
        {
            throw SizeMismatch(tensorName, rows, cols, dtype, source.Length, destination.Length);
        }

        byte[] codes = ArrayPool<byte>.Shared.Rent(destination.Length);
        try
        {
            Fp8Result result = Quantize(tensorName, source, dtype, dtype, rows, cols, codes.AsSpan(0, destination.Length), options ?? Fp8Options.Default);
            Dequantize(codes.AsSpan(0, destination.Length), result.WeightScale, destination);
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(codes);
        }
    }

    /// <summary>
    /// Fake quantization in place of fp32 copies of weights stored as <paramref name="sourceType"/> (every value must be
    /// exactly a <paramref name="sourceType"/> value, as widened from the checkpoint): the quotients are rounded to
    /// <paramref name="sourceType"/> as the export does, so the result equals dequantizing the exported bytes.
    /// </summary>
    public static Fp8Result FakeQuantizeWeightInPlace(
        string tensorName, Span<float> weights, DType sourceType, int rows, int cols, Fp8Options? options = null)
    {
        RequireRepresentable(tensorName, weights, sourceType);
        byte[] codes = ArrayPool<byte>.Shared.Rent(weights.Length);
        try
        {
            Span<byte> used = codes.AsSpan(0, weights.Length);
            Fp8Result result = Quantize(tensorName, MemoryMarshal.AsBytes(weights), DType.F32, sourceType, rows, cols, used, options ?? Fp8Options.Default);
            Dequantize(used, result.WeightScale, weights);
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(codes);
        }
    }

    /// <summary>The one quantization path: source read as <paramref name="sourceType"/>, quotients rounded to <paramref name="roundTo"/>.</summary>
    private static Fp8Result Quantize(
        string tensorName, ReadOnlySpan<byte> source, DType sourceType, DType roundTo, int rows, int cols, Span<byte> destination, Fp8Options options)
    {
        if (!DTypes.IsFloatingSource(roundTo))
        {
            throw new ModelOptException(
                NumericsErrorIds.Fp8UnsupportedDType,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}' is {roundTo}; FP8 quantizes BF16, F16 or F32 weights.");
        }

        long elements = (long)rows * cols;
        if (rows < 0 || cols < 0 || source.Length != elements * DTypes.SizeOf(sourceType) || destination.Length != elements)
        {
            throw SizeMismatch(tensorName, rows, cols, sourceType, source.Length, destination.Length);
        }

        float amax = options.Amax is float given ? RequireGivenAmax(tensorName, given) : Amax.Compute(source, sourceType, options.Path) switch
        {
            { IsFinite: true } own => own.Amax,
            var bad => throw Amax.NonFinite(tensorName, source, sourceType, bad.FirstNonFiniteIndex),
        };

        float weightScale = WeightScale(amax);
        float divisor = Divisor(weightScale, roundTo, options.Order);
        if (divisor == 0f)
        {
            throw new ModelOptException(
                NumericsErrorIds.WeightScaleUnderflow,
                ErrorKind.InvalidData,
                $"Tensor '{tensorName}' has amax {Format(amax)}: its FP8 scale amax/448 = {Format(weightScale)} is 0 "
                + (weightScale == 0f ? "in fp32" : $"once cast to {roundTo} as CUDA does")
                + ", so ModelOpt would write NaN codes. Exclude this tensor" + (weightScale == 0f ? "." : ", or use the CPU operation order."));
        }

        Fp8KernelStats stats = Fp8Kernel.Quantize(source, sourceType, roundTo, divisor, destination, options.Path);
        if (stats.MaxAbsBits >= 0x7F80_0000u)
        {
            // Only reachable with a given amax (otherwise the amax pass refused it); find the first bad index.
            throw Amax.NonFinite(tensorName, source, sourceType, Amax.Compute(source, sourceType, options.Path).FirstNonFiniteIndex);
        }

        float tensorAmax = BitConverter.UInt32BitsToSingle(stats.MaxAbsBits);
        if (stats.MaxQuotientBits > BitConverter.SingleToUInt32Bits(464f))
        {
            ThrowOnNaNCodes(tensorName, destination, amax, tensorAmax, weightScale, divisor);
        }

        var flags = Fp8Flags.None;
        var warnings = new List<string>();
        if (tensorAmax == 0f)
        {
            flags |= Fp8Flags.ZeroTensor;
            warnings.Add(amax == 0f
                ? $"Tensor '{tensorName}' is all zeros: wrote codes 0 and weight_scale = 1/448 (ModelOpt would write NaN codes for it)."
                : $"Tensor '{tensorName}' is all zeros (quantized with the given amax {Format(amax)}).");
        }

        if (tensorAmax > amax)
        {
            flags |= Fp8Flags.AmaxBelowTensor;
            warnings.Add($"Tensor '{tensorName}' has max |w| {Format(tensorAmax)} above the amax {Format(amax)} it was quantized with: "
                + "its largest weights round to ±448. Take the amax over every part the scale covers.");
        }

        return new Fp8Result(tensorName, weightScale, amax, tensorAmax, flags, warnings);
    }

    private static float RequireGivenAmax(string tensorName, float given) =>
        given >= 0f && float.IsFinite(given)
            ? given
            : throw new ModelOptException(
                NumericsErrorIds.InvalidGlobalAmax,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}': the FP8 amax given ({Format(given)}) must be a finite number ≥ 0.");

    /// <summary>A quotient passed 464, so some codes may be the E4M3 NaN: count them and refuse rather than write NaN.</summary>
    private static void ThrowOnNaNCodes(string tensorName, ReadOnlySpan<byte> codes, float amax, float tensorAmax, float weightScale, float divisor)
    {
        int first = codes.IndexOfAny(E4M3.NaN, (byte)(E4M3.NaN | 0x80));
        if (first < 0)
        {
            return;
        }

        int count = codes.Count(E4M3.NaN) + codes.Count((byte)(E4M3.NaN | 0x80));
        throw new ModelOptException(
            NumericsErrorIds.Fp8CodeOverflow,
            ErrorKind.InvalidData,
            $"Tensor '{tensorName}': {count} weights (first at flat index {first}) divided by the FP8 scale pass 464 and would be NaN codes "
            + $"(max |w| {Format(tensorAmax)}, amax {Format(amax)}, weight_scale {Format(weightScale)}, divided by {Format(divisor)}). "
            + (tensorAmax > amax ? "The given amax must cover this tensor's max |w|." : "The scale lost its precision in the weight's dtype; use the CPU operation order or exclude this tensor."));
    }

    private static void RequireRepresentable(string tensorName, ReadOnlySpan<float> weights, DType sourceType)
    {
        for (int i = 0; i < weights.Length; i++)
        {
            float w = weights[i];
            bool exact = sourceType switch
            {
                DType.BF16 => (BitConverter.SingleToUInt32Bits(w) & 0xFFFFu) == 0,
                DType.F16 => (float)(Half)w == w,
                _ => true,
            };
            if (!exact && !float.IsNaN(w))
            {
                throw new ArgumentException(
                    $"Tensor '{tensorName}': element {i} ({Format(w)}) is not a {sourceType} value; pass the weights as widened from the checkpoint.",
                    nameof(weights));
            }
        }
    }

    private static ModelOptException SizeMismatch(string tensorName, int rows, int cols, DType dtype, int sourceLength, int destinationLength) => new(
        NumericsErrorIds.Fp8BufferSizeMismatch,
        ErrorKind.InvalidArgument,
        $"Tensor '{tensorName}' [{rows}, {cols}] {dtype}: expected {(long)rows * cols * DTypes.SizeOf(dtype)} source bytes and "
        + $"{(long)rows * cols} outputs; got {sourceLength} and {destinationLength}.");

    private static string Format(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
