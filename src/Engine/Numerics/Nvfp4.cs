using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// NVFP4 quantization of one 2-D weight [rows = out_features, cols = in_features], bit-identical with NVIDIA ModelOpt
/// (spec: shared/spec/nvfp4-numerics.md). Sources are raw little-endian BF16/F16/F32 bytes (e.g. a memory-mapped
/// safetensors tensor); outputs go to caller-provided spans:
/// <list type="bullet">
/// <item><c>weight</c>: uint8 [rows, cols/2], two E2M1 codes per byte, even column in the low nibble;</item>
/// <item><c>weight_scale</c>: float8_e4m3fn [rows, cols/16], one byte per 16-element block;</item>
/// <item><c>weight_scale_2</c>: the fp32 scalar in <see cref="Nvfp4Result.WeightScale2"/>.</item>
/// </list>
/// Work runs on the widest SIMD path the CPU accelerates, in parallel over chunks of rows.
/// </summary>
public static class Nvfp4
{
    /// <summary>Elements per block along the input (last) dimension.</summary>
    public const int BlockSize = 16;

    /// <summary>True when a weight with this many input features can be NVFP4 (a positive multiple of 16).</summary>
    public static bool CanQuantize(long cols) => cols > 0 && cols % BlockSize == 0;

    /// <summary>Bytes of the packed <c>weight</c> tensor: rows × cols / 2.</summary>
    public static int PackedLength(int rows, int cols) => checked(rows * (cols / 2));

    /// <summary>Bytes (= elements) of the <c>weight_scale</c> tensor: rows × cols / 16.</summary>
    public static int ScaleLength(int rows, int cols) => checked(rows * (cols / BlockSize));

    /// <summary>
    /// Refuses a shape NVFP4 cannot represent with <see cref="NumericsErrorIds.Nvfp4ShapeNotBlockAligned"/>.
    /// The planner should have excluded such modules (spec: "in % 16 != 0": stays unquantized, warned); this is the
    /// kernel's own guard.
    /// </summary>
    public static void ValidateShape(string tensorName, long rows, long cols)
    {
        if (rows < 0 || !CanQuantize(cols))
        {
            throw new ModelOptException(
                NumericsErrorIds.Nvfp4ShapeNotBlockAligned,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}' has shape [{rows}, {cols}]: NVFP4 needs an input (last) dimension that is a positive multiple of {BlockSize}. "
                + "Leave this module unquantized (exclude it).");
        }
    }

    /// <summary>
    /// Quantizes one tensor (spec steps 1-6). With <see cref="Nvfp4Options.GlobalAmax"/> unset, amax is max |w| of this
    /// tensor (one extra read pass); set it to share <c>weight_scale_2</c> across a fused group.
    /// </summary>
    /// <exception cref="ModelOptException">
    /// <see cref="NumericsErrorIds.NonFiniteWeight"/> (a NaN/Inf, with the first flat index),
    /// <see cref="NumericsErrorIds.Nvfp4ShapeNotBlockAligned"/>, <see cref="NumericsErrorIds.Nvfp4BufferSizeMismatch"/>,
    /// <see cref="NumericsErrorIds.Nvfp4UnsupportedDType"/>, <see cref="NumericsErrorIds.InvalidGlobalAmax"/>,
    /// <see cref="NumericsErrorIds.WeightScaleUnderflow"/>. On an exception the output spans hold garbage.
    /// </exception>
    public static Nvfp4Result Quantize(
        string tensorName, ReadOnlySpan<byte> source, DType dtype, int rows, int cols, Span<byte> packed, Span<byte> scales, Nvfp4Options? options = null)
    {
        options ??= Nvfp4Options.Default;
        ValidateShape(tensorName, rows, cols);
        ValidateBuffers(tensorName, source.Length, dtype, rows, cols, packed.Length, scales.Length);

        float amax;
        if (options.GlobalAmax is float given)
        {
            if (!(given >= 0f) || !float.IsFinite(given))
            {
                throw new ModelOptException(
                    NumericsErrorIds.InvalidGlobalAmax,
                    ErrorKind.InvalidArgument,
                    $"Tensor '{tensorName}': the global amax given ({Format(given)}) must be a finite number ≥ 0.");
            }

            amax = given;
        }
        else
        {
            AmaxResult own = Amax.Compute(source, dtype, options.Path);
            if (!own.IsFinite)
            {
                throw Amax.NonFinite(tensorName, source, dtype, own.FirstNonFiniteIndex);
            }

            amax = own.Amax;
        }

        float weightScale2 = GlobalScale.ForWeight(amax, options.Order);
        if (weightScale2 == 0f)
        {
            throw new ModelOptException(
                NumericsErrorIds.WeightScaleUnderflow,
                ErrorKind.InvalidData,
                $"Tensor '{tensorName}' has amax {Format(amax)}, so small that amax/2688 rounds to 0 in fp32 and no finite NVFP4 "
                + "scale exists (ModelOpt would write NaN scales). Exclude this tensor.");
        }

        uint maxBits = Nvfp4Kernel.Quantize(source, dtype, rows, cols, weightScale2, packed, scales, options.Path);
        if (maxBits >= 0x7F80_0000u)
        {
            // Only reachable with a given amax (otherwise the amax pass refused it); find the first bad index.
            AmaxResult scan = Amax.Compute(source, dtype, options.Path);
            throw Amax.NonFinite(tensorName, source, dtype, scan.FirstNonFiniteIndex);
        }

        float tensorAmax = BitConverter.UInt32BitsToSingle(maxBits);
        var flags = Nvfp4Flags.None;
        var warnings = new List<string>();
        if (tensorAmax == 0f)
        {
            flags |= Nvfp4Flags.ZeroTensor;
            warnings.Add(amax == 0f
                ? $"Tensor '{tensorName}' is all zeros: wrote block scales 1.0 and weight_scale_2 = 1/2688 "
                  + "(ModelOpt would write NaN block scales for it)."
                : $"Tensor '{tensorName}' is all zeros (quantized with the group amax {Format(amax)}).");
        }

        if (tensorAmax > amax)
        {
            flags |= Nvfp4Flags.AmaxExceedsGlobal;
            warnings.Add($"Tensor '{tensorName}' has max |w| {Format(tensorAmax)} above the global amax {Format(amax)} it was "
                + "quantized with: its largest blocks saturate. Take the group amax over every member tensor.");
        }

        return new Nvfp4Result(tensorName, weightScale2, amax, tensorAmax, flags, warnings);
    }

    /// <summary>
    /// Step 7 into fp32: <c>E2M1[code] × fl32(fp32(weight_scale) × weight_scale_2)</c> for rows × cols elements.
    /// </summary>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales, float weightScale2, int rows, int cols, Span<float> destination) =>
        Dequantize(packed, scales, weightScale2, rows, cols, destination, KernelPath.Auto);

    internal static void Dequantize(
        ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales, float weightScale2, int rows, int cols, Span<float> destination, KernelPath path)
    {
        ValidateShape("(dequantize)", rows, cols);
        if (packed.Length != PackedLength(rows, cols) || scales.Length != ScaleLength(rows, cols) || destination.Length != (long)rows * cols)
        {
            throw new ModelOptException(
                NumericsErrorIds.Nvfp4BufferSizeMismatch,
                ErrorKind.InvalidArgument,
                $"Dequantize [{rows}, {cols}]: expected {PackedLength(rows, cols)} packed bytes, {ScaleLength(rows, cols)} scales and "
                + $"{(long)rows * cols} outputs; got {packed.Length}, {scales.Length} and {destination.Length}.");
        }

        Nvfp4Kernel.Dequantize(packed, scales, weightScale2, rows, cols, destination, path);
    }

    /// <summary>
    /// Fake quantization for quality measurements: quantize <paramref name="source"/> as <see cref="Quantize"/> does,
    /// then write the dequantized fp32 values to <paramref name="destination"/> (rows × cols floats).
    /// </summary>
    public static Nvfp4Result FakeQuantize(
        string tensorName, ReadOnlySpan<byte> source, DType dtype, int rows, int cols, Span<float> destination, Nvfp4Options? options = null)
    {
        ValidateShape(tensorName, rows, cols);
        int packedLength = PackedLength(rows, cols), scaleLength = ScaleLength(rows, cols);
        byte[] packed = ArrayPool<byte>.Shared.Rent(packedLength);
        byte[] scales = ArrayPool<byte>.Shared.Rent(scaleLength);
        try
        {
            Nvfp4Result result = Quantize(tensorName, source, dtype, rows, cols, packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength), options);
            Dequantize(
                packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength), result.WeightScale2, rows, cols, destination,
                (options ?? Nvfp4Options.Default).Path);
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
            ArrayPool<byte>.Shared.Return(scales);
        }
    }

    /// <summary>Fake quantization of fp32 weights in place (the whole tensor is quantized before anything is overwritten).</summary>
    public static Nvfp4Result FakeQuantizeInPlace(string tensorName, Span<float> weights, int rows, int cols, Nvfp4Options? options = null) =>
        FakeQuantize(tensorName, MemoryMarshal.AsBytes(weights), DType.F32, rows, cols, weights, options);

    internal static void ValidateBuffers(string tensorName, int sourceLength, DType dtype, int rows, int cols, int packedLength, int scaleLength)
    {
        if (!DTypes.IsFloatingSource(dtype))
        {
            throw new ModelOptException(
                NumericsErrorIds.Nvfp4UnsupportedDType,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}' is {dtype}; NVFP4 quantizes BF16, F16 or F32 weights.");
        }

        long elements = (long)rows * cols;
        if (sourceLength != elements * DTypes.SizeOf(dtype) || packedLength != elements / 2 || scaleLength != elements / BlockSize)
        {
            throw new ModelOptException(
                NumericsErrorIds.Nvfp4BufferSizeMismatch,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}' [{rows}, {cols}] {dtype}: expected {elements * DTypes.SizeOf(dtype)} source bytes, {elements / 2} packed "
                + $"bytes and {elements / BlockSize} scales; got {sourceLength}, {packedLength} and {scaleLength}.");
        }
    }

    internal static string Format(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
