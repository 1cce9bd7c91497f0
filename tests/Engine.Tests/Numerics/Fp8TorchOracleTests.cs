using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// FP8 bytes against libtorch, an independent implementation of ModelOpt's formula: the weight in its own dtype divided
/// by a 0-d scale tensor, then PyTorch's float8_e4m3fn cast. PyTorch's CPU path for a BF16/F16 tensor divided by an F32
/// 0-d tensor is exactly the CPU order, <c>T(float(w) / s)</c>; dividing by the scale cast to T first runs the
/// reduced-float scalar path with <c>float(T(s))</c>, which is what CUDA computes (<c>T(float(w) / float(T(s)))</c>).
/// </summary>
public class Fp8TorchOracleTests
{
    private static ScalarType TorchType(DType dtype) => dtype switch
    {
        DType.BF16 => ScalarType.BFloat16,
        DType.F16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>libtorch's bytes for <c>(weight / scale).to(float8_e4m3fn)</c> in the given order.</summary>
    private static byte[] TorchQuantize(byte[] source, DType dtype, int rows, int cols, float weightScale, GlobalScaleOrder order)
    {
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        Tensor weight = Nvfp4Torch.FromRawBytes(source, TorchType(dtype), rows, cols);
        Tensor scale = tensor(weightScale); // 0-d F32, as ModelOpt's weight_scale
        Tensor divisor = order == GlobalScaleOrder.Cpu ? scale : scale.to(TorchType(dtype));
        Tensor quotient = weight / divisor;
        Assert.Equal(TorchType(dtype), quotient.dtype); // 0-d tensors do not promote: the quotient is rounded to T
        return quotient.to(TorchFloat8.Float8E4M3Fn).bytes.ToArray();
    }

    /// <summary>libtorch's fp32 <c>amax / 448</c> (a true IEEE division; equal to ModelOpt's double-then-fp32).</summary>
    private static float TorchScale(float amax)
    {
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        return (tensor(amax) / tensor(448f)).item<float>();
    }

    private static void AssertSameBytes(byte[] expected, byte[] actual, byte[] source, DType dtype, string what)
    {
        int first = expected.AsSpan().CommonPrefixLength(actual);
        if (first == expected.Length && expected.Length == actual.Length)
        {
            return;
        }

        int mismatches = Enumerable.Range(0, expected.Length).Count(i => expected[i] != actual[i]);
        Assert.Fail($"{what}: {mismatches} of {expected.Length} bytes differ; first at {first}: w = {Nvfp4Reference.ReadElement(source, dtype, first):R}, "
            + $"libtorch 0x{expected[first]:X2}, ours 0x{actual[first]:X2}");
    }

    public static TheoryData<DType, GlobalScaleOrder, float> Cases()
    {
        var data = new TheoryData<DType, GlobalScaleOrder, float>();
        foreach (DType dtype in NumericsData.SourceTypes)
        {
            foreach (GlobalScaleOrder order in new[] { GlobalScaleOrder.Cuda, GlobalScaleOrder.Cpu })
            {
                // Weight-sized amaxes, a large one, and a tiny one (for F16: a scale in F16's subnormal range, where the
                // CUDA order's f16(s) loses precision). All exactly representable in the source type.
                foreach (float amax in dtype == DType.F16 ? new[] { 3f, 0.0625f, 0.015625f, 1000f } : new[] { 3f, 0.0625f, 200f, MathF.ScaleB(1.5f, -66) })
                {
                    data.Add(dtype, order, amax);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LargeMixedTensor_MatchesLibtorch(DType dtype, GlobalScaleOrder order, float amax)
    {
        const int rows = 384, cols = 1536; // 576 Ki elements: several parallel chunks
        float[] values = Fp8Data.Mixed(rows, cols, amax, dtype, seed: (int)dtype * 31 + (int)order * 7 + (int)MathF.Log2(amax));
        byte[] source = NumericsData.Encode(values, dtype);

        var codes = new byte[rows * cols];
        Fp8Result result = Fp8.Quantize("w", source, dtype, rows, cols, codes, new Fp8Options { Order = order });
        Assert.Equal(BitConverter.SingleToUInt32Bits(TorchScale(amax)), BitConverter.SingleToUInt32Bits(result.WeightScale));
        Assert.Equal(amax, result.Amax);
        Assert.Equal(Fp8Flags.None, result.Flags);

        AssertSameBytes(TorchQuantize(source, dtype, rows, cols, result.WeightScale, order), codes, source, dtype, $"{dtype} {order} amax {amax}");
        Assert.Contains(codes, c => c == 0x80); // -0 keeps its sign, as in libtorch
        Assert.Contains(codes, c => c == 0x7E);

        if (dtype != DType.F32)
        {
            // The data tells the two orders apart, so matching libtorch in one order is a real check of that order.
            var other = new byte[rows * cols];
            Fp8.Quantize("w", source, dtype, rows, cols, other, new Fp8Options { Order = order == GlobalScaleOrder.Cuda ? GlobalScaleOrder.Cpu : GlobalScaleOrder.Cuda });
            Assert.NotEqual(codes, other);
        }
    }

    [Theory]
    [InlineData(GlobalScaleOrder.Cpu, "7E 08 09 0C 8D 76 00 80 3E FE")]
    [InlineData(GlobalScaleOrder.Cuda, "7E 09 0A 0D 8E 76 00 80 3E FE")]
    public void HandComputedBf16Vector(GlobalScaleOrder order, string expectedHex)
    {
        // amax 1: s = fl32(1/448) = 0x3B124925, in CUDA order divided as bf16(s) = 0x3B120000 (0.0022277…), 0.2% smaller,
        // which moves quotients such as 0x381C (3.719e-5 / s = 0.01666 → bf16 0.01666 → E4M3 tie side) one code up.
        // Expected bytes worked out with exact rational arithmetic, independently of this code and of libtorch.
        byte[] source = NumericsData.Bf16FromHex("3F80 381C 382D 3865 B876 3F00 0000 8000 3B80 BF7F");
        var codes = new byte[10];
        Fp8Result result = Fp8.Quantize("w", source, DType.BF16, 2, 5, codes, new Fp8Options { Order = order });
        Assert.Equal(0x3B124925u, BitConverter.SingleToUInt32Bits(result.WeightScale));
        Assert.Equal(expectedHex, NumericsData.ToHex(codes));
        Assert.Equal(NumericsData.Hex(expectedHex), TorchQuantize(source, DType.BF16, 2, 5, result.WeightScale, order));
    }

    [Theory]
    [InlineData(GlobalScaleOrder.Cpu, "7E 29 61 F1 00 74 2B 2E 2F")]
    [InlineData(GlobalScaleOrder.Cuda, "7E 29 61 F1 00 74 2C 2F 30")]
    public void HandComputedF16Vector(GlobalScaleOrder order, string expectedHex)
    {
        // amax 0.75: s = 0x3ADB6DB7 (0.00167410…), f16(s) = 0.00167369…; 0x0001 is f16's smallest subnormal.
        ushort[] halves = [0x3A00, 0x1000, 0x2C00, 0xB400, 0x0001, 0x3555, 0x10ED, 0x1237, 0x12A4];
        byte[] source = halves.SelectMany(BitConverter.GetBytes).ToArray();
        var codes = new byte[halves.Length];
        Fp8Result result = Fp8.Quantize("w", source, DType.F16, 1, halves.Length, codes, new Fp8Options { Order = order });
        Assert.Equal(0x3ADB6DB7u, BitConverter.SingleToUInt32Bits(result.WeightScale));
        Assert.Equal(expectedHex, NumericsData.ToHex(codes));
        Assert.Equal(NumericsData.Hex(expectedHex), TorchQuantize(source, DType.F16, 1, halves.Length, result.WeightScale, order));
    }

    [Fact]
    public void HandComputedUnitScaleVector()
    {
        // amax 448 gives weight_scale exactly 1 in both orders, so the codes are E4M3 of the weights themselves:
        // 448, -448, 1, 0.5, 3, -0, 0, 1.0625 (tie → even 1.0), 1.1875 (tie → even 1.25), 2^-9, 2^-10 (tie → 0),
        // 3·2^-10 (tie → even 2^-8).
        float[] values = [448f, -448f, 1f, 0.5f, 3f, -0f, 0f, 1.0625f, 1.1875f, 1f / 512, 1f / 1024, 3f / 1024];
        const string expected = "7E FE 38 30 44 80 00 38 3A 01 00 02";
        foreach (DType dtype in NumericsData.SourceTypes)
        {
            foreach (GlobalScaleOrder order in new[] { GlobalScaleOrder.Cuda, GlobalScaleOrder.Cpu })
            {
                var codes = new byte[values.Length];
                Fp8Result result = Fp8.Quantize("w", NumericsData.Encode(values, dtype), dtype, 1, values.Length, codes, new Fp8Options { Order = order });
                Assert.Equal(1f, result.WeightScale);
                Assert.Equal(expected, NumericsData.ToHex(codes));
            }
        }
    }

    [Fact]
    public void WeightScale_MatchesLibtorchFp32Division_OverManyAmaxes()
    {
        // ModelOpt's double division then fp32 rounding equals one fp32 division: 448 = 7·2^6 and a/7 is either exact
        // or never lands on an fp32 rounding midpoint, so the double rounding cannot differ. libtorch checks it.
        var random = new Random(448);
        float[] amaxes = Enumerable.Range(0, 20_000).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.Next(0x0080_0000, 0x7F00_0000))).ToArray();
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        float[] expected = (tensor(amaxes) / tensor(448f)).data<float>().ToArray();
        float[] reciprocal = (tensor(amaxes) * (tensor(1f) / tensor(448f))).data<float>().ToArray();
        for (int i = 0; i < amaxes.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected[i]), BitConverter.SingleToUInt32Bits(Fp8.WeightScale(amaxes[i])));
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected[i]), BitConverter.SingleToUInt32Bits(Fp8.ActivationScale(amaxes[i], "q", GlobalScaleOrder.Cpu)));
            Assert.Equal(BitConverter.SingleToUInt32Bits(reciprocal[i]), BitConverter.SingleToUInt32Bits(Fp8.ActivationScale(amaxes[i], "q")));
        }

        Assert.Contains(Enumerable.Range(0, amaxes.Length), i => expected[i] != reciprocal[i]); // the orders do differ
    }
}
