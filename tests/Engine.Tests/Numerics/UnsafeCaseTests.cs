using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>The spec's "where ModelOpt is unsafe" table, and the other refusals of the quantizer.</summary>
public class UnsafeCaseTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    private static Nvfp4Result Quantize(byte[] source, DType dtype, int rows, int cols, string pathName, out byte[] packed, out byte[] scales, float? globalAmax = null)
    {
        packed = new byte[Nvfp4.PackedLength(rows, cols)];
        scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        return Nvfp4.Quantize("model.layers.0.mlp.down_proj.weight", source, dtype, rows, cols, packed, scales,
            new Nvfp4Options { Path = NumericsData.Path(pathName), GlobalAmax = globalAmax });
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void ZeroTensor_GivesFiniteOutputAndAWarning(string pathName, DType dtype)
    {
        const int rows = 40, cols = 4096 + 32; // several parallel chunks
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.Length; i += 3)
        {
            values[i] = -0f; // negative zeros too: still a zero tensor, and -0 gives code 0, not 8
        }

        Nvfp4Result result = Quantize(NumericsData.Encode(values, dtype), dtype, rows, cols, pathName, out byte[] packed, out byte[] scales);
        Assert.Equal(BitConverter.SingleToUInt32Bits(1f / 2688f), BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.Equal(0x39C30C31u, BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.All(scales, s => Assert.Equal(0x38, s));
        Assert.All(packed, p => Assert.Equal(0, p));
        Assert.Equal(Nvfp4Flags.ZeroTensor, result.Flags);
        Assert.Equal(0f, result.Amax);
        string warning = Assert.Single(result.Warnings);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", warning);
        Assert.Contains("all zeros", warning);
    }

    [Fact]
    public void ZeroTensorInANonZeroGroup_UsesTheGroupScale()
    {
        byte[] zeros = new byte[32 * 2];
        Nvfp4Result result = Quantize(zeros, DType.BF16, 1, 32, "Scalar", out byte[] packed, out byte[] scales, globalAmax: 2f);
        Assert.Equal(GlobalScale.FromAmax(2f), result.WeightScale2);
        Assert.Equal(Nvfp4Flags.ZeroTensor, result.Flags);
        Assert.Equal([0x38, 0x38], scales);
        Assert.All(packed, p => Assert.Equal(0, p));
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void NonFinite_IsRefusedWithTensorNameAndFirstIndex(string pathName, DType dtype)
    {
        const int rows = 300, cols = 2048; // > 1 amax chunk and > 1 kernel chunk
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity];
        foreach (float special in specials)
        {
            foreach (int firstBad in new[] { 0, 17, 300_000, rows * cols - 1 })
            {
                float[] values = NumericsData.WeightLike(rows, cols, 3);
                values[firstBad] = special;
                if (firstBad + 5000 < values.Length)
                {
                    values[firstBad + 5000] = float.NaN; // a later one must not be the one reported
                }

                byte[] source = NumericsData.Encode(values, dtype);
                foreach (float? given in new float?[] { null, 1f })
                {
                    var error = Assert.Throws<ModelOptException>(() => Quantize(source, dtype, rows, cols, pathName, out _, out _, given));
                    Assert.Equal(NumericsErrorIds.NonFiniteWeight, error.ErrorId);
                    Assert.Equal(ErrorKind.InvalidData, error.Kind);
                    Assert.Contains("model.layers.0.mlp.down_proj.weight", error.Message);
                    Assert.Contains($"flat index {firstBad} ", error.Message);
                    Assert.Contains(float.IsNaN(special) ? "NaN" : special > 0 ? "+Inf" : "-Inf", error.Message);
                }
            }
        }
    }

    [Theory]
    [InlineData(4, 8)]
    [InlineData(4, 24)]
    [InlineData(1, 100)]
    [InlineData(1, 0)]
    [InlineData(-1, 16)]
    public void ColsNotAMultipleOf16_IsRefused(int rows, int cols)
    {
        var error = Assert.Throws<ModelOptException>(() =>
            Nvfp4.Quantize("vision.proj.weight", new byte[Math.Max(0, rows * cols * 2)], DType.BF16, rows, cols, new byte[64], new byte[64]));
        Assert.Equal(NumericsErrorIds.Nvfp4ShapeNotBlockAligned, error.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("vision.proj.weight", error.Message);
        Assert.Contains("multiple of 16", error.Message);
        Assert.Equal(rows >= 0 ? false : cols % 16 == 0, Nvfp4.CanQuantize(cols));
    }

    [Fact]
    public void WrongBufferSizesAndTypes_AreRefused()
    {
        var e1 = Assert.Throws<ModelOptException>(() => Nvfp4.Quantize("t", new byte[64], DType.BF16, 2, 16, new byte[15], new byte[2]));
        Assert.Equal(NumericsErrorIds.Nvfp4BufferSizeMismatch, e1.ErrorId);
        var e2 = Assert.Throws<ModelOptException>(() => Nvfp4.Quantize("t", new byte[63], DType.BF16, 2, 16, new byte[16], new byte[2]));
        Assert.Equal(NumericsErrorIds.Nvfp4BufferSizeMismatch, e2.ErrorId);
        var e3 = Assert.Throws<ModelOptException>(() => Nvfp4.Quantize("t", new byte[32], DType.I8, 2, 16, new byte[16], new byte[2]));
        Assert.Equal(NumericsErrorIds.Nvfp4UnsupportedDType, e3.ErrorId);
        var e4 = Assert.Throws<ModelOptException>(() => Nvfp4.Dequantize(new byte[16], new byte[1], 1f, 2, 16, new float[32]));
        Assert.Equal(NumericsErrorIds.Nvfp4BufferSizeMismatch, e4.ErrorId);
    }

    [Theory]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void InvalidGlobalAmax_IsRefused(float amax)
    {
        var error = Assert.Throws<ModelOptException>(() => Quantize(new byte[32], DType.BF16, 1, 16, "Scalar", out _, out _, amax));
        Assert.Equal(NumericsErrorIds.InvalidGlobalAmax, error.ErrorId);
    }

    [Fact]
    public void GlobalAmaxBelowTheTensor_IsFlagged()
    {
        float[] values = NumericsData.WeightLike(4, 64, 1);
        float own = values.Max(MathF.Abs);
        Nvfp4Result result = Quantize(NumericsData.Encode(values, DType.F32), DType.F32, 4, 64, "Vector256", out _, out byte[] scales, own / 4);
        Assert.Equal(Nvfp4Flags.AmaxExceedsGlobal, result.Flags);
        Assert.Equal(own, result.TensorAmax);
        Assert.Equal(own / 4, result.Amax);
        Assert.Contains(scales, s => s == 0x7E);
        Assert.Contains("saturate", Assert.Single(result.Warnings));
    }

    [Fact]
    public void AmaxWhoseScaleUnderflows_IsRefused()
    {
        // fp32 denormals so small that amax × fl32(1/2688) rounds to 0: ModelOpt would write 0/0 = NaN scales.
        float[] values = new float[16];
        values[0] = float.Epsilon * 100;
        var error = Assert.Throws<ModelOptException>(() => Quantize(NumericsData.Encode(values, DType.F32), DType.F32, 1, 16, "Scalar", out _, out _));
        Assert.Equal(NumericsErrorIds.WeightScaleUnderflow, error.ErrorId);
    }

    [Fact]
    public void InputScale_RefusesZeroMissingOrNonFiniteAmax()
    {
        foreach (float amax in new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
        {
            var error = Assert.Throws<ModelOptException>(() => GlobalScale.InputScale(amax, "model.layers.3.self_attn.q_proj"));
            Assert.Equal(NumericsErrorIds.InvalidInputAmax, error.ErrorId);
            Assert.Contains("model.layers.3.self_attn.q_proj", error.Message);
        }
    }

    [Fact]
    public void EmptyTensor_IsAZeroTensor()
    {
        Nvfp4Result result = Nvfp4.Quantize("empty", ReadOnlySpan<byte>.Empty, DType.BF16, 0, 64, Span<byte>.Empty, Span<byte>.Empty);
        Assert.Equal(Nvfp4Flags.ZeroTensor, result.Flags);
    }
}
