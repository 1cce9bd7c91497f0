using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// libtorch as an independent oracle: its own float8_e4m3fn cast for the E4M3 codec, and ModelOpt's algorithm written
/// as libtorch tensor operations for the whole quantizer.
/// </summary>
public class TorchOracleTests
{
    private static byte[] TorchE4M3(float[] values)
    {
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        return tensor(values).to(TorchFloat8.Float8E4M3Fn).bytes.ToArray();
    }

    /// <summary>
    /// Every E4M3 value, every tie between neighbours (and ±1..2 ulps), every subnormal step, the overflow region up to
    /// 480 and beyond, specials, random values over every fp32 exponent, and a dense sweep of the clamped range — both signs.
    /// </summary>
    private static float[] E4M3Probes()
    {
        var probes = new List<float> { 0f, float.PositiveInfinity, BitConverter.UInt32BitsToSingle(0x7FC0_0000u), float.Epsilon, 1e-30f, 1e30f, 464f, 480f, 500f, 1e6f };
        for (int code = 0; code < 0x7F; code++)
        {
            float value = E4M3.ToFloat((byte)code);
            float next = code < 0x7E ? E4M3.ToFloat((byte)(code + 1)) : 512f; // 0x7E's upper neighbour in the fp8 grid would be 480
            float mid = (value + next) / 2f;
            foreach (float centre in new[] { value, mid })
            {
                float lo = centre, hi = centre;
                probes.Add(centre);
                for (int k = 0; k < 2; k++)
                {
                    lo = MathF.BitDecrement(lo);
                    hi = MathF.BitIncrement(hi);
                    probes.Add(lo);
                    probes.Add(hi);
                }
            }
        }

        // Dense subnormal region: every multiple of 2^-13 up to 2^-6 (quarter steps hit every tie and the values between).
        for (int k = 0; k <= 128; k++)
        {
            probes.Add(k / 8192f);
        }

        var random = new Random(24);
        for (int k = 0; k < 60_000; k++)
        {
            probes.Add(BitConverter.UInt32BitsToSingle((uint)random.Next(0, 0x7F80_0000)));  // any finite fp32
            probes.Add((float)(random.NextDouble() * 500.0));                               // around the fp8 range
        }

        // A stride through every fp32 pattern in [2^-9, 448] (the values NVFP4 actually casts).
        uint first = BitConverter.SingleToUInt32Bits(1f / 512), last = BitConverter.SingleToUInt32Bits(448f);
        for (uint bits = first; bits <= last; bits += 1531)
        {
            probes.Add(BitConverter.UInt32BitsToSingle(bits));
        }

        int n = probes.Count;
        for (int i = 0; i < n; i++)
        {
            probes.Add(-probes[i]);
        }

        return probes.ToArray();
    }

    [Fact]
    public void E4M3Cast_MatchesLibtorch_OnEveryTieAndSubnormal()
    {
        float[] probes = E4M3Probes();
        Assert.True(probes.Length >= 100_000, $"{probes.Length} probes");
        byte[] expected = TorchE4M3(probes);
        int mismatches = 0;
        string first = "";
        for (int i = 0; i < probes.Length; i++)
        {
            byte actual = E4M3.FromFloat(probes[i]);
            if (actual != expected[i])
            {
                if (mismatches++ == 0)
                {
                    first = $"{probes[i]:R} (0x{BitConverter.SingleToUInt32Bits(probes[i]):X8}): ours 0x{actual:X2}, libtorch 0x{expected[i]:X2}";
                }
            }
        }

        Assert.True(mismatches == 0, $"{mismatches} of {probes.Length} differ; first: {first}");
    }

    [Fact]
    public void E4M3Decode_MatchesLibtorch()
    {
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        byte[] codes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        float[] values = Nvfp4Torch.FromRawBytes(codes, TorchFloat8.Float8E4M3Fn, codes.Length).to(float32).data<float>().ToArray();
        for (int i = 0; i < 256; i++)
        {
            float ours = E4M3.ToFloat((byte)i);
            Assert.True(float.IsNaN(values[i]) ? float.IsNaN(ours) : values[i] == ours, $"code 0x{i:X2}: libtorch {values[i]:R}, ours {ours:R}");
        }
    }

    [Theory]
    [InlineData(DType.BF16, GlobalScaleOrder.Cuda)]
    [InlineData(DType.BF16, GlobalScaleOrder.Cpu)]
    [InlineData(DType.F16, GlobalScaleOrder.Cuda)]
    [InlineData(DType.F32, GlobalScaleOrder.Cuda)]
    public void WholeQuantizer_MatchesModelOptAlgorithmInLibtorch(DType dtype, GlobalScaleOrder order)
    {
        const int rows = 256, cols = 2048;
        float[] values = NumericsData.WeightLike(rows, cols, 31);

        // Splice in adversarial blocks (ties at the E2M1 bounds, subnormal and clamped scales, zeros).
        float[] adversarial = NumericsData.Adversarial(64, cols, 1f / 4096, dtype, 32);
        adversarial.CopyTo(values, 0);
        byte[] source = NumericsData.Encode(values, dtype);

        (byte[] torchPacked, byte[] torchScales, float torchScale2) = QuantizeWithTorch(source, dtype, rows, cols, order);

        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Result result = Nvfp4.Quantize("w", source, dtype, rows, cols, packed, scales, new Nvfp4Options { Order = order });
        Assert.Equal(BitConverter.SingleToUInt32Bits(torchScale2), BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.Equal(torchScales, scales);
        Assert.Equal(torchPacked, packed);
    }

    [Fact]
    public void SpecVectorC_MatchesLibtorch()
    {
        string hex = "BD8F BD76 BD4D BD24 BCF6 BCA4 BC24 0000 3C24 3CA4 3CF6 3D24 3D4D 3D76 3D8F 3DA4 "
            + string.Join(' ', Enumerable.Repeat("0000", 16))
            + " 3E9A BE4D 3DCD 3D4D BC24 0000 3F33 BEE6 3E4D 3E00 BEA9 3F66 3F1A BF4D 3E80 3E1A "
            + "3A83 3B03 3B45 3B83 3BA4 3BC5 3BE5 3C03 3C13 3C24 3C34 3C45 3C55 3C65 3C76 3C83";
        (byte[] packed, byte[] scales, float scale2) = QuantizeWithTorch(NumericsData.Bf16FromHex(hex), DType.BF16, 2, 32, GlobalScaleOrder.Cuda);
        Assert.Equal(0x39AF3CF4u, BitConverter.SingleToUInt32Bits(scale2));
        Assert.Equal("62 38 7E 50", NumericsData.ToHex(scales));
        Assert.Equal("EF DE BC 09 31 54 66 77 00 00 00 00 00 00 00 00 B4 11 08 D6 23 7C F6 23 11 32 44 55 65 66 76 77", NumericsData.ToHex(packed));
    }

    private static (byte[] Packed, byte[] Scales, float WeightScale2) QuantizeWithTorch(byte[] source, DType dtype, int rows, int cols, GlobalScaleOrder order)
    {
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        ScalarType type = dtype switch { DType.BF16 => ScalarType.BFloat16, DType.F16 => ScalarType.Float16, _ => ScalarType.Float32 };
        Tensor weight = Nvfp4Torch.FromRawBytes(source, type, rows, cols);
        return Nvfp4Torch.Quantize(weight, order);
    }
}
