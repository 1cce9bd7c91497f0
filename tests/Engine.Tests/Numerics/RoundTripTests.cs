using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>dequantize(quantize(w)) stays within the error NVFP4 guarantees per block.</summary>
public class RoundTripTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    /// <summary>
    /// Half the gap between neighbouring E2M1 values around |x| = |w|/d: 0.25 below 2, 0.5 below 4, 1 up to 6;
    /// past 6 (a block scale rounded down by the E4M3 cast, at most 6·(1+2^-4)) the saturation error |x| − 6.
    /// </summary>
    private static float HalfGap(float x) => x <= 2f ? 0.25f : x <= 4f ? 0.5f : x <= 6f ? 1f : x - 6f;

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void DequantizedError_IsWithinTheBlockBound(string pathName, DType dtype)
    {
        const int rows = 96, cols = 1024;
        float[] values = NumericsData.WeightLike(rows, cols, 77);
        byte[] source = NumericsData.Encode(values, dtype);
        KernelPath path = NumericsData.Path(pathName);
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Result result = Nvfp4.Quantize("w", source, dtype, rows, cols, packed, scales, new Nvfp4Options { Path = path });
        var back = new float[rows * cols];
        Nvfp4.Dequantize(packed, scales, result.WeightScale2, rows, cols, back, path);

        double sumSquaredError = 0, sumSquared = 0;
        for (int b = 0; b < scales.Length; b++)
        {
            float d = E4M3.ToFloat(scales[b]) * result.WeightScale2;
            float blockAmax = 0f;
            for (int i = 0; i < 16; i++)
            {
                blockAmax = MathF.Max(blockAmax, MathF.Abs(Nvfp4Reference.ReadElement(source, dtype, b * 16 + i)));
            }

            for (int i = 0; i < 16; i++)
            {
                float w = Nvfp4Reference.ReadElement(source, dtype, b * 16 + i);
                float error = MathF.Abs(back[b * 16 + i] - w);
                // Slack for the fp32 rounding of w/d and of the dequantized product: a few ulps of |w|.
                float bound = d * HalfGap(MathF.Abs(w) / d) + MathF.Abs(w) * 1e-6f + float.Epsilon;
                Assert.True(error <= bound, $"block {b} element {i}: w={w:R} back={back[b * 16 + i]:R} error={error:R} bound={bound:R}");

                // The looser, scale-free form: never more than a sixth of the block amax (one E2M1 half-gap at the top
                // of the range), widened by the E4M3 rounding of the scale (2^-4) — unless the scale was clamped at 2^-9.
                if (blockAmax / (6f * result.WeightScale2) >= 1f / 512)
                {
                    Assert.True(error <= blockAmax / 6f * (1f + 1f / 16) * (1f + 1e-6f));
                }

                sumSquaredError += (double)error * error;
                sumSquared += (double)w * w;
            }
        }

        // Gaussian-like weights lose about 10% relative RMS to 4-bit blocks; far more would mean a broken kernel.
        double relativeRms = Math.Sqrt(sumSquaredError / sumSquared);
        Assert.InRange(relativeRms, 0.01, 0.2);
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Dequantize_FastEqualsReference(string pathName, DType dtype)
    {
        const int rows = 70, cols = 4096;
        byte[] source = NumericsData.Encode(NumericsData.WeightLike(rows, cols, 8), dtype);
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Result result = Nvfp4.Quantize("w", source, dtype, rows, cols, packed, scales);

        // Every code in every nibble position, too.
        for (int i = 0; i < 256; i++)
        {
            packed[i] = (byte)i;
        }

        var expected = new float[rows * cols];
        Nvfp4Reference.Dequantize(packed, scales, result.WeightScale2, expected);
        var actual = new float[rows * cols];
        Nvfp4.Dequantize(packed, scales, result.WeightScale2, rows, cols, actual, NumericsData.Path(pathName));
        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void FakeQuantize_EqualsQuantizeThenDequantize(string pathName, DType dtype)
    {
        const int rows = 33, cols = 512;
        float[] values = NumericsData.WeightLike(rows, cols, 4);
        byte[] source = NumericsData.Encode(values, dtype);
        var options = new Nvfp4Options { Path = NumericsData.Path(pathName) };
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Result result = Nvfp4.Quantize("w", source, dtype, rows, cols, packed, scales, options);
        var expected = new float[rows * cols];
        Nvfp4Reference.Dequantize(packed, scales, result.WeightScale2, expected);

        var fake = new float[rows * cols];
        Nvfp4Result fakeResult = Nvfp4.FakeQuantize("w", source, dtype, rows, cols, fake, options);
        Assert.Equal(result.WeightScale2, fakeResult.WeightScale2);
        Assert.Equal(expected, fake);

        if (dtype == DType.F32)
        {
            float[] inPlace = (float[])values.Clone();
            Nvfp4.FakeQuantizeInPlace("w", inPlace, rows, cols, options);
            Assert.Equal(expected, inPlace);
        }
    }

    [Fact]
    public void FakeQuantize_IsIdempotentOnRepresentableValues()
    {
        // Vector A's values are exactly representable; fake quantization returns them unchanged.
        float[] w = [0, .5f, 1, 1.5f, 2, 3, 4, 6, 0, -.5f, -1, -1.5f, -2, -3, -4, -6];
        float[] copy = (float[])w.Clone();
        Nvfp4.FakeQuantizeInPlace("a", copy, 1, 16);
        Assert.Equal(w, copy);
    }
}
