using System.Runtime.InteropServices;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The readable definition of NVFP4 (spec steps 3-7), one block at a time, in plain scalar fp32.
/// Every C# float operation below is one IEEE binary32 operation, which is what each <c>fl32()</c> in the spec means.
/// The SIMD kernels must produce the same bytes; the tests compare them against this code. It is also the scalar
/// fallback of <see cref="Nvfp4Kernel"/>.
/// </summary>
internal static class Nvfp4Reference
{
    /// <summary>
    /// Step 3: the E4M3 block scale byte for a block whose largest magnitude is <paramref name="blockAmax"/>.
    /// <c>t = fl32(6·wsf2)</c> first, then a true fp32 division (ModelOpt: <c>block_amax / (E2M1_MAX * wsf2)</c>);
    /// an all-zero block gets 1.0; then clamp to [2^-9, 448] so the cast can neither underflow to 0 nor overflow to NaN.
    /// </summary>
    public static byte BlockScale(float blockAmax, float weightScale2)
    {
        float t = E2M1.MaxValue * weightScale2;
        float s = blockAmax / t;
        if (s == 0f)
        {
            s = 1f;
        }

        if (s < E4M3.MinSubnormal)
        {
            s = E4M3.MinSubnormal;
        }
        else if (s > E4M3.MaxValue)
        {
            s = E4M3.MaxValue;
        }

        return E4M3.FromFloat(s);
    }

    /// <summary>
    /// Steps 3-6 for one block of 16 weights: returns the scale byte and writes 8 packed bytes (even column in the low nibble).
    /// </summary>
    public static byte QuantizeBlock(ReadOnlySpan<float> block, float weightScale2, Span<byte> packed)
    {
        float blockAmax = 0f;
        foreach (float w in block[..Nvfp4.BlockSize])
        {
            blockAmax = MathF.Max(blockAmax, MathF.Abs(w));
        }

        byte scale = BlockScale(blockAmax, weightScale2);

        // Step 4: the per-block divisor is fl32(fp32(scale) × wsf2), then each weight is divided by it (true division:
        // ModelOpt divides tensors, which is IEEE division on every device; a reciprocal multiply would differ).
        float divisor = E4M3.ToFloat(scale) * weightScale2;
        for (int k = 0; k < Nvfp4.BlockSize / 2; k++)
        {
            byte low = E2M1.Encode(block[2 * k] / divisor);
            byte high = E2M1.Encode(block[2 * k + 1] / divisor);
            packed[k] = (byte)(low | (high << 4));
        }

        return scale;
    }

    /// <summary>
    /// Quantizes a whole [rows, cols] tensor, block by block, with a given <c>weight_scale_2</c>
    /// (tests use this as the oracle for the kernels; no validation beyond span lengths).
    /// </summary>
    public static void Quantize(ReadOnlySpan<byte> source, DType dtype, int rows, int cols, float weightScale2, Span<byte> packed, Span<byte> scales)
    {
        long blocks = (long)rows * cols / Nvfp4.BlockSize;
        Span<float> block = stackalloc float[Nvfp4.BlockSize];
        for (long b = 0; b < blocks; b++)
        {
            for (int i = 0; i < Nvfp4.BlockSize; i++)
            {
                block[i] = ReadElement(source, dtype, b * Nvfp4.BlockSize + i);
            }

            scales[(int)b] = QuantizeBlock(block, weightScale2, packed.Slice((int)(b * 8), 8));
        }
    }

    /// <summary>Step 7: <c>E2M1[code] × fl32(fp32(weight_scale) × weight_scale_2)</c>, the product formed first as ModelOpt does.</summary>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales, float weightScale2, Span<float> destination)
    {
        for (int b = 0; b < scales.Length; b++)
        {
            float blockScale = E4M3.ToFloat(scales[b]) * weightScale2;
            for (int k = 0; k < Nvfp4.BlockSize / 2; k++)
            {
                byte pair = packed[b * 8 + k];
                destination[b * Nvfp4.BlockSize + 2 * k] = E2M1.Decode(pair & 0xF) * blockScale;
                destination[b * Nvfp4.BlockSize + 2 * k + 1] = E2M1.Decode(pair >> 4) * blockScale;
            }
        }
    }

    public static float ReadElement(ReadOnlySpan<byte> source, DType dtype, long index) => dtype switch
    {
        DType.BF16 => Widening.Bf16ToSingle(MemoryMarshal.Read<ushort>(source[checked((int)(index * 2))..])),
        DType.F16 => Widening.F16ToSingle(MemoryMarshal.Read<ushort>(source[checked((int)(index * 2))..])),
        DType.F32 => MemoryMarshal.Read<float>(source[checked((int)(index * 4))..]),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
