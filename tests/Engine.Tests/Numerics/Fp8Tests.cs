using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>FP8 scales, the refusals and warnings of <see cref="Fp8.Quantize"/>, dequantization and fake quantization.</summary>
public class Fp8Tests
{
    private const string Name = "model.layers.0.self_attn.o_proj.weight";

    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    private static uint Bits(float value) => BitConverter.SingleToUInt32Bits(value);

    [Fact]
    public void Reciprocal_IsFl32OfOneOver448()
    {
        // Three derivations: the pinned pattern, a double division rounded once more (safe: 1/7 never sits on an fp32
        // midpoint), and libtorch's fp32 division.
        Assert.Equal(0x3B124925u, Bits(Fp8.Reciprocal));
        Assert.Equal(Bits((float)(1.0 / 448.0)), Bits(Fp8.Reciprocal));
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        Assert.Equal(Bits((tensor(1f) / tensor(448f)).item<float>()), Bits(Fp8.Reciprocal));
    }

    [Theory]
    // amax, amax/448 (weight_scale and CPU-order activation scale), amax × fl32(1/448) (CUDA order); worked out with
    // exact rational arithmetic outside this code base.
    [InlineData(0x3F800000u, 0x3B124925u, 0x3B124925u)] // 1.0
    [InlineData(0x3F400000u, 0x3ADB6DB7u, 0x3ADB6DB8u)] // 0.75: the orders differ by one ulp
    [InlineData(0x40490000u, 0x3BE5B6DBu, 0x3BE5B6DCu)] // 3.140625
    [InlineData(0x3A83126Fu, 0x3615CBEDu, 0x3615CBEDu)] // 0.001
    [InlineData(0x43E00000u, 0x3F800000u, 0x3F800000u)] // 448
    [InlineData(0x477FE000u, 0x431236DBu, 0x431236DCu)] // 65504
    [InlineData(0x41458794u, 0x3CE1BF85u, 0x3CE1BF85u)] // 12.3456
    [InlineData(0x3627C5ACu, 0x31BFBD57u, 0x31BFBD57u)] // 2.5e-6
    public void Scales_HavePinnedBits(uint amaxBits, uint divided, uint multiplied)
    {
        float amax = BitConverter.UInt32BitsToSingle(amaxBits);
        Assert.Equal(divided, Bits(Fp8.WeightScale(amax)));
        Assert.Equal(divided, Bits(Fp8.ActivationScale(amax, "k_bmm_quantizer", GlobalScaleOrder.Cpu)));
        Assert.Equal(multiplied, Bits(Fp8.ActivationScale(amax, "k_bmm_quantizer", GlobalScaleOrder.Cuda)));
        Assert.Equal(multiplied, Bits(Fp8.ActivationScale(amax, "k_bmm_quantizer")));
    }

    [Fact]
    public void ActivationScale_RefusesZeroNegativeOrNonFiniteAmax()
    {
        foreach (float amax in new[] { 0f, -0f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            foreach (GlobalScaleOrder order in new[] { GlobalScaleOrder.Cuda, GlobalScaleOrder.Cpu })
            {
                var error = Assert.Throws<ModelOptException>(() => Fp8.ActivationScale(amax, "model.layers.3.self_attn.k_bmm_quantizer", order));
                Assert.Equal(NumericsErrorIds.InvalidInputAmax, error.ErrorId);
                Assert.Equal(ErrorKind.InvalidData, error.Kind);
                Assert.Contains("model.layers.3.self_attn.k_bmm_quantizer", error.Message);
            }
        }
    }

    [Fact]
    public void WeightScale_OfZero_IsTheScaleOfOne() => Assert.Equal(0x3B124925u, Bits(Fp8.WeightScale(0f)));

    private static Fp8Result Quantize(float[] values, DType dtype, int rows, int cols, string pathName, out byte[] codes, float? amax = null, GlobalScaleOrder order = GlobalScaleOrder.Cuda)
    {
        codes = new byte[rows * cols];
        return Fp8.Quantize(Name, NumericsData.Encode(values, dtype), dtype, rows, cols, codes,
            new Fp8Options { Path = NumericsData.Path(pathName), Amax = amax, Order = order });
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void ZeroTensor_GivesZeroCodesTheScaleOfOneAndAWarning(string pathName, DType dtype)
    {
        const int rows = 40, cols = 8000; // several parallel chunks
        Fp8Result result = Quantize(new float[rows * cols], dtype, rows, cols, pathName, out byte[] codes);
        Assert.All(codes, c => Assert.Equal(0, c));
        Assert.Equal(Bits((float)(1.0 / 448.0)), Bits(result.WeightScale));
        Assert.Equal(0f, result.Amax);
        Assert.Equal(Fp8Flags.ZeroTensor, result.Flags);
        Assert.Contains(Name, Assert.Single(result.Warnings));
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void NonFiniteWeight_IsRefusedWithNameAndFirstIndex(string pathName, DType dtype)
    {
        const int rows = 30, cols = 9000;
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            float[] values = NumericsData.WeightLike(rows, cols, 3);
            values[123_457] = bad;
            values[200_001] = float.NaN;
            foreach (float? amax in new float?[] { null, 1f })
            {
                // Without an amax the amax pass refuses it; with one, the kernel's own max |w| does.
                var error = Assert.Throws<ModelOptException>(() => Quantize(values, dtype, rows, cols, pathName, out _, amax));
                Assert.Equal(NumericsErrorIds.NonFiniteWeight, error.ErrorId);
                Assert.Contains(Name, error.Message);
                Assert.Contains("123457", error.Message);
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void GivenAmax_SharesTheScale(string pathName, DType dtype)
    {
        // Gate and up halves of one fused expert: one amax, one weight_scale, each half quantized with it.
        float[] gate = NumericsData.WeightLike(64, 256, 11), up = NumericsData.WeightLike(64, 256, 12);
        float shared = MathF.Max(
            Amax.ComputeFinite("gate", NumericsData.Encode(gate, dtype), dtype),
            Amax.ComputeFinite("up", NumericsData.Encode(up, dtype), dtype));
        Fp8Result gateResult = Quantize(gate, dtype, 64, 256, pathName, out _, shared);
        Fp8Result upResult = Quantize(up, dtype, 64, 256, pathName, out _, shared);
        Assert.Equal(Bits(Fp8.WeightScale(shared)), Bits(gateResult.WeightScale));
        Assert.Equal(Bits(gateResult.WeightScale), Bits(upResult.WeightScale));
        Assert.Equal(Fp8Flags.None, gateResult.Flags | upResult.Flags);
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void GivenAmaxBelowTheTensor_WarnsOrRefusesNaNCodes(string pathName, DType dtype)
    {
        float[] values = NumericsData.WeightLike(16, 512, 13);
        float peak = values.Max(MathF.Abs);
        values = values.Select(v => v / peak).ToArray(); // max |w| 1 ...
        values[777] = 2f;                                // ... except these two
        values[5000] = -1.5f;

        // amax 1.99: 2 / fl32(1.99/448) = 450.25, which every source type rounds to an E4M3 448, with a warning.
        Fp8Result result = Quantize(values, dtype, 16, 512, pathName, out byte[] codes, 1.99f);
        Assert.Equal(Fp8Flags.AmaxBelowTensor, result.Flags);
        Assert.Equal(0x7E, codes[777]);
        Assert.Contains("round to ±448", Assert.Single(result.Warnings));

        var error = Assert.Throws<ModelOptException>(() => Quantize(values, dtype, 16, 512, pathName, out _, 1.5f));
        Assert.Equal(NumericsErrorIds.Fp8CodeOverflow, error.ErrorId);
        Assert.Contains(Name, error.Message);
        Assert.Contains("first at flat index 777", error.Message);
        Assert.Contains("1 weights", error.Message); // 2 → 597 is NaN; -1.5 → -448 exactly

        foreach (float bad in new[] { -1f, float.NaN, float.PositiveInfinity })
        {
            var invalid = Assert.Throws<ModelOptException>(() => Quantize(values, dtype, 16, 512, pathName, out _, bad));
            Assert.Equal(NumericsErrorIds.InvalidGlobalAmax, invalid.ErrorId);
        }
    }

    [Fact]
    public void F16ScaleThatLosesPrecisionInCudaOrder_IsRefusedNotWrittenAsNaN()
    {
        // amax = f16 0x0C15 (2.4915e-4): s = 5.5613e-7 is an f16 subnormal, f16(s) = 9·2^-24 = 5.3644e-7, and
        // amax / f16(s) = 464.5: ModelOpt on CUDA would write a NaN code. The CPU order divides by s itself.
        float amax = (float)BitConverter.UInt16BitsToHalf(0x0C15);
        float[] values = [amax, -amax / 2, 0f, amax / 3];
        var error = Assert.Throws<ModelOptException>(() => Quantize(values, DType.F16, 1, 4, "Auto", out _, order: GlobalScaleOrder.Cuda));
        Assert.Equal(NumericsErrorIds.Fp8CodeOverflow, error.ErrorId);
        Assert.Contains("CPU operation order", error.Message);

        Quantize(values, DType.F16, 1, 4, "Auto", out byte[] codes, order: GlobalScaleOrder.Cpu);
        Assert.Equal(0x7E, codes[0]);
    }

    [Fact]
    public void ScaleThatRoundsToZero_IsRefused()
    {
        // fp32: amax/448 below the smallest denormal. F16 in CUDA order: f16(amax/448) = 0 for amax = 2^-24.
        var fp32 = Assert.Throws<ModelOptException>(() => Quantize([float.Epsilon * 100, 0f], DType.F32, 1, 2, "Auto", out _));
        Assert.Equal(NumericsErrorIds.WeightScaleUnderflow, fp32.ErrorId);
        var f16 = Assert.Throws<ModelOptException>(() => Quantize([MathF.ScaleB(1f, -24), 0f], DType.F16, 1, 2, "Auto", out _));
        Assert.Equal(NumericsErrorIds.WeightScaleUnderflow, f16.ErrorId);
        Assert.Contains("F16", f16.Message);
    }

    [Fact]
    public void BadBuffersAndTypes_AreRefused()
    {
        var codes = new byte[8];
        var mismatch = Assert.Throws<ModelOptException>(() => Fp8.Quantize(Name, new byte[16], DType.BF16, 2, 5, codes));
        Assert.Equal(NumericsErrorIds.Fp8BufferSizeMismatch, mismatch.ErrorId);
        var type = Assert.Throws<ModelOptException>(() => Fp8.Quantize(Name, new byte[8], DType.I8, 2, 4, codes));
        Assert.Equal(NumericsErrorIds.Fp8UnsupportedDType, type.ErrorId);
        var dequantize = Assert.Throws<ModelOptException>(() => Fp8.Dequantize(codes, 1f, new float[7]));
        Assert.Equal(NumericsErrorIds.Fp8BufferSizeMismatch, dequantize.ErrorId);
    }

    [Fact]
    public void Dequantize_IsCodeTimesScale_AsLibtorch()
    {
        byte[] codes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        float scale = Fp8.WeightScale(3.3f);
        var ours = new float[256];
        Fp8.Dequantize(codes, scale, ours);
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        float[] expected = (Nvfp4Torch.FromRawBytes(codes, TorchFloat8.Float8E4M3Fn, 256).to(float32) * tensor(scale)).data<float>().ToArray();
        for (int i = 0; i < 256; i++)
        {
            Assert.True(float.IsNaN(expected[i]) ? float.IsNaN(ours[i]) : Bits(expected[i]) == Bits(ours[i]), $"code 0x{i:X2}");
        }
    }

    [Fact]
    public void FakeQuantizeActivations_MatchesVllmStaticQuantInLibtorch()
    {
        // vLLM: x × (1/scale), clamp to ±448, cast, × scale; written here with libtorch ops.
        var random = new Random(21);
        float scale = Fp8.ActivationScale(37.5f, "input_quantizer");
        float[] values = Enumerable.Range(0, 100_000).Select(i => i % 10 == 0
            ? (float)((random.NextDouble() * 2 - 1) * 100)        // past the clamp
            : (float)((random.NextDouble() * 2 - 1) * 37.5 * Math.Pow(2, -random.Next(0, 20)))).ToArray();
        values[0] = 0f;
        values[1] = -0f;
        values[2] = float.PositiveInfinity;
        float[] ours = values.ToArray();
        Fp8.FakeQuantizeInPlace(ours, scale);

        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        Tensor inverse = tensor(1f) / tensor(scale);
        float[] expected = ((tensor(values) * inverse).clamp(Scalars.Of(-448.0), Scalars.Of(448.0)).to(TorchFloat8.Float8E4M3Fn).to(float32) * tensor(scale))
            .data<float>().ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            Assert.True(Bits(expected[i]) == Bits(ours[i]), $"x = {values[i]:R}: libtorch {expected[i]:R}, ours {ours[i]:R}");
        }

        // fminf/fmaxf: NaN becomes 448 in vLLM's kernel (libtorch's clamp would keep NaN).
        float[] nan = [float.NaN];
        Fp8.FakeQuantizeInPlace(nan, scale);
        Assert.Equal(448f * scale, nan[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => Fp8.FakeQuantizeInPlace(nan, 0f));
    }

    [Theory]
    [InlineData(DType.BF16, GlobalScaleOrder.Cuda)]
    [InlineData(DType.BF16, GlobalScaleOrder.Cpu)]
    [InlineData(DType.F16, GlobalScaleOrder.Cuda)]
    [InlineData(DType.F32, GlobalScaleOrder.Cuda)]
    public void FakeQuantizeWeight_UsesTheExportedBytes(DType dtype, GlobalScaleOrder order)
    {
        const int rows = 96, cols = 3000;
        float[] values = Fp8Data.Mixed(rows, cols, 0.5f, dtype, 17);
        byte[] source = NumericsData.Encode(values, dtype);
        var options = new Fp8Options { Order = order };
        var codes = new byte[rows * cols];
        Fp8Result exported = Fp8.Quantize(Name, source, dtype, rows, cols, codes, options);
        var expected = new float[codes.Length];
        Fp8.Dequantize(codes, exported.WeightScale, expected);

        var fromBytes = new float[codes.Length];
        Fp8.FakeQuantizeWeight(Name, source, dtype, rows, cols, fromBytes, options);
        Assert.Equal(expected, fromBytes);

        // fp32 copies of the stored weights, quantized in place as their source type: the same values.
        float[] widened = Enumerable.Range(0, codes.Length).Select(i => Nvfp4Reference.ReadElement(source, dtype, i)).ToArray();
        Fp8Result inPlace = Fp8.FakeQuantizeWeightInPlace(Name, widened, dtype, rows, cols, options);
        Assert.Equal(Bits(exported.WeightScale), Bits(inPlace.WeightScale));
        Assert.Equal(expected, widened);
    }

    [Fact]
    public void FakeQuantizeWeightInPlace_RefusesValuesNotOfTheSourceType()
    {
        float[] values = [0.1f, 0.5f]; // 0.1 is not a BF16 or F16 value
        Assert.Throws<ArgumentException>(() => Fp8.FakeQuantizeWeightInPlace(Name, values, DType.BF16, 1, 2));
        Assert.Throws<ArgumentException>(() => Fp8.FakeQuantizeWeightInPlace(Name, values, DType.F16, 1, 2));
    }
}
