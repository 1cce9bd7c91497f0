using System.Buffers;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Static NVFP4: quantization with GIVEN E4M3 block scales (chosen by <see cref="Nvfp4Search"/>, or any other rule) and a
/// given <c>weight_scale_2</c>. Per element exactly the dynamic path's spec steps 4-6:
/// <c>x = fl32(w / fl32(fp32(scale)·weight_scale_2))</c>, E2M1 rounding half to even, even column in the low nibble; the
/// checkpoint dequantizes to <c>E2M1 × scale × weight_scale_2</c>. With the scales the dynamic rule gives, the bytes are
/// exactly <see cref="Nvfp4.Quantize"/>'s.
/// </summary>
public static class Nvfp4Static
{
    /// <summary>
    /// Packs <paramref name="weight"/> [rows, cols] (BF16/F16/F32 bytes) into <paramref name="packed"/> [rows, cols/2]
    /// with <paramref name="blockScales"/> [rows, cols/16] (E4M3 bytes).
    /// </summary>
    /// <exception cref="ModelOptException">
    /// <see cref="NumericsErrorIds.InvalidBlockScale"/>, <see cref="NumericsErrorIds.InvalidWeightScale2"/>,
    /// <see cref="NumericsErrorIds.NonFiniteWeight"/>, and the shape/buffer/dtype errors of <see cref="Nvfp4.Quantize"/>.
    /// </exception>
    public static Nvfp4Result Quantize(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, ReadOnlySpan<byte> blockScales, float weightScale2, Span<byte> packed) =>
        Quantize(tensorName, weight, dtype, rows, cols, blockScales, weightScale2, packed, KernelPath.Auto);

    internal static Nvfp4Result Quantize(
        string tensorName, ReadOnlySpan<byte> weight, DType dtype, int rows, int cols, ReadOnlySpan<byte> blockScales, float weightScale2, Span<byte> packed,
        KernelPath path)
    {
        Nvfp4.ValidateShape(tensorName, rows, cols);
        Nvfp4.ValidateBuffers(tensorName, weight.Length, dtype, rows, cols, packed.Length, blockScales.Length);
        ValidateScales(tensorName, blockScales, weightScale2);
        uint maxBits = Nvfp4Kernel.QuantizeWithScales(weight, dtype, rows, cols, blockScales, weightScale2, packed, path);
        if (maxBits >= 0x7F80_0000u)
        {
            throw Amax.NonFinite(tensorName, weight, dtype, Amax.Compute(weight, dtype, path).FirstNonFiniteIndex);
        }

        float tensorAmax = BitConverter.UInt32BitsToSingle(maxBits);
        bool zero = tensorAmax == 0f;
        return new Nvfp4Result(
            tensorName, weightScale2, weightScale2 * GlobalScale.Divisor, tensorAmax, zero ? Nvfp4Flags.ZeroTensor : Nvfp4Flags.None,
            zero ? [$"Tensor '{tensorName}' is all zeros."] : []);
    }

    /// <summary>
    /// Fake quantization of fp32 weights in place with given block scales: each value becomes
    /// <c>E2M1[code] × fl32(fp32(scale)·weight_scale_2)</c> (the whole tensor is quantized before anything is overwritten).
    /// </summary>
    public static void FakeQuantizeInPlace(
        Span<float> values, int rows, int cols, ReadOnlySpan<byte> blockScales, float weightScale2, string tensorName = "(weights)") =>
        FakeQuantizeInPlace(values, rows, cols, blockScales, weightScale2, tensorName, KernelPath.Auto);

    internal static void FakeQuantizeInPlace(
        Span<float> values, int rows, int cols, ReadOnlySpan<byte> blockScales, float weightScale2, string tensorName, KernelPath path)
    {
        Nvfp4.ValidateShape(tensorName, rows, cols);
        int packedLength = Nvfp4.PackedLength(rows, cols);
        byte[] packed = ArrayPool<byte>.Shared.Rent(packedLength);
        try
        {
            Quantize(tensorName, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values), DType.F32, rows, cols, blockScales, weightScale2, packed.AsSpan(0, packedLength), path);
            Nvfp4.Dequantize(packed.AsSpan(0, packedLength), blockScales, weightScale2, rows, cols, values, path);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
        }
    }

    private static void ValidateScales(string tensorName, ReadOnlySpan<byte> blockScales, float weightScale2)
    {
        if (!(weightScale2 > 0f) || !float.IsFinite(weightScale2))
        {
            throw new ModelOptException(
                NumericsErrorIds.InvalidWeightScale2,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}': weight_scale_2 {Nvfp4.Format(weightScale2)} must be a finite number above zero.");
        }

        // Valid bytes are 0x01..0x7E: 0x00 would divide by zero, 0x7F is NaN, and the sign bit makes a negative scale.
        int bad = blockScales.IndexOfAnyExceptInRange((byte)0x01, (byte)0x7E);
        if (bad >= 0)
        {
            throw new ModelOptException(
                NumericsErrorIds.InvalidBlockScale,
                ErrorKind.InvalidArgument,
                $"Tensor '{tensorName}': block scale {bad} is 0x{blockScales[bad]:X2}; an NVFP4 block scale must be a positive finite E4M3 value (0x01-0x7E).");
        }
    }
}
