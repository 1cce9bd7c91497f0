using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>Every test vector of shared/spec/nvfp4-numerics.md, exactly, on every kernel path.</summary>
public class SpecVectorTests
{
    public static TheoryData<string> Paths() => NumericsData.Paths();

    private static (Nvfp4Result Result, byte[] Packed, byte[] Scales) Run(byte[] bf16, int rows, int cols, string pathName, GlobalScaleOrder order = GlobalScaleOrder.Cuda)
    {
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Result result = Nvfp4.Quantize("vector", bf16, DType.BF16, rows, cols, packed, scales, new Nvfp4Options { Path = NumericsData.Path(pathName), Order = order });
        return (result, packed, scales);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void VectorA(string pathName)
    {
        float[] w = [0, .5f, 1, 1.5f, 2, 3, 4, 6, 0, -.5f, -1, -1.5f, -2, -3, -4, -6];
        var (result, packed, scales) = Run(NumericsData.Encode(w, DType.BF16), 1, 16, pathName);
        Assert.Equal(0x3B124925u, BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.Equal("7E", NumericsData.ToHex(scales));
        Assert.Equal("10 32 54 76 90 BA DC FE", NumericsData.ToHex(packed));

        // A dequantizes exactly back to its input.
        var back = new float[16];
        Nvfp4.Dequantize(packed, scales, result.WeightScale2, 1, 16, back);
        Assert.Equal(w, back);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void VectorB(string pathName)
    {
        float[] w = [-.25f, .25f, .75f, 1.25f, 1.75f, 2.75f, 3.75f, 5.75f, -.25f, -.75f, -1.25f, -1.75f, -2.25f, -3.25f, -4.25f, -6.25f];
        var (result, packed, scales) = Run(NumericsData.Encode(w, DType.BF16), 1, 16, pathName);
        Assert.Equal(0x3B186186u, BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.Equal("7E", NumericsData.ToHex(scales));
        Assert.Equal("08 21 53 76 98 BA DC FE", NumericsData.ToHex(packed));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void VectorC(string pathName)
    {
        string row0 = "BD8F BD76 BD4D BD24 BCF6 BCA4 BC24 0000 3C24 3CA4 3CF6 3D24 3D4D 3D76 3D8F 3DA4 "
            + string.Join(' ', Enumerable.Repeat("0000", 16));
        string row1 = "3E9A BE4D 3DCD 3D4D BC24 0000 3F33 BEE6 3E4D 3E00 BEA9 3F66 3F1A BF4D 3E80 3E1A "
            + "3A83 3B03 3B45 3B83 3BA4 3BC5 3BE5 3C03 3C13 3C24 3C34 3C45 3C55 3C65 3C76 3C83";
        var (result, packed, scales) = Run(NumericsData.Bf16FromHex(row0 + " " + row1), 2, 32, pathName);
        Assert.Equal(0.8984375f, result.Amax);
        Assert.Equal(0x39AF3CF4u, BitConverter.SingleToUInt32Bits(result.WeightScale2));
        Assert.Equal("62 38 7E 50", NumericsData.ToHex(scales));
        Assert.Equal(
            "EF DE BC 09 31 54 66 77 00 00 00 00 00 00 00 00 B4 11 08 D6 23 7C F6 23 11 32 44 55 65 66 76 77",
            NumericsData.ToHex(packed));
    }

    [Fact]
    public void VectorsAgreeWithTheReference()
    {
        // The same three vectors through the scalar reference directly (not through the façade).
        byte[] a = NumericsData.Encode([0, .5f, 1, 1.5f, 2, 3, 4, 6, 0, -.5f, -1, -1.5f, -2, -3, -4, -6], DType.BF16);
        var packed = new byte[8];
        var scales = new byte[1];
        Nvfp4Reference.Quantize(a, DType.BF16, 1, 16, GlobalScale.FromAmax(6f), packed, scales);
        Assert.Equal("10 32 54 76 90 BA DC FE", NumericsData.ToHex(packed));
        Assert.Equal(0x7E, scales[0]);
    }

    [Fact]
    public void E2M1RoundingLists()
    {
        float[][] first = [[0.25f, 0.75f, 1.25f], [1.75f, 2.5f, 3.5f]];
        byte[][] firstCodes = [[0, 2, 2], [4, 4, 6]];
        float[][] second = [[0.1f, 2.5f, 1.0f, 4.8f], [1.5f, 1.25f, 3.25f, 5.0f]];
        byte[][] secondCodes = [[0, 4, 2, 6], [3, 2, 5, 6]];
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(firstCodes[r], first[r].Select(E2M1.Encode).ToArray());
            Assert.Equal(secondCodes[r], second[r].Select(E2M1.Encode).ToArray());
        }
    }

    [Theory]
    [InlineData(5.125f, 0x3AF9E79Fu, 0x3AF9E79Eu)]
    [InlineData(4.625f, 0x3AE18619u, 0x3AE18618u)]
    public void GlobalScaleOrder_MatchesBothDevices(float amax, uint cuda, uint cpu)
    {
        Assert.Equal(cuda, BitConverter.SingleToUInt32Bits(GlobalScale.FromAmax(amax, GlobalScaleOrder.Cuda)));
        Assert.Equal(cpu, BitConverter.SingleToUInt32Bits(GlobalScale.FromAmax(amax, GlobalScaleOrder.Cpu)));
        Assert.Equal(cuda, BitConverter.SingleToUInt32Bits(GlobalScale.FromAmax(amax)));
        Assert.Equal(cuda, BitConverter.SingleToUInt32Bits(GlobalScale.InputScale(amax, "m")));
        Assert.Equal(cpu, BitConverter.SingleToUInt32Bits(GlobalScale.InputScale(amax, "m", GlobalScaleOrder.Cpu)));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void GlobalScaleOrder_ReachesTheQuantizer(string pathName)
    {
        // A one-block tensor with amax 5.125: weight_scale_2 follows the order asked for.
        float[] w = new float[16];
        w[3] = -5.125f;
        w[7] = 1f;
        byte[] bf16 = NumericsData.Encode(w, DType.BF16);
        Assert.Equal(0x3AF9E79Fu, BitConverter.SingleToUInt32Bits(Run(bf16, 1, 16, pathName, GlobalScaleOrder.Cuda).Result.WeightScale2));
        Assert.Equal(0x3AF9E79Eu, BitConverter.SingleToUInt32Bits(Run(bf16, 1, 16, pathName, GlobalScaleOrder.Cpu).Result.WeightScale2));
    }

    [Fact]
    public void ReciprocalConstant_IsFl32OfOneOver2688()
    {
        Assert.Equal(0x39C30C31u, BitConverter.SingleToUInt32Bits(GlobalScale.Reciprocal));
        float computed = 1f;
        computed /= GlobalScale.Divisor; // a run-time fp32 division
        Assert.Equal(computed, GlobalScale.Reciprocal);
    }

    [Fact]
    public void FormatConstants()
    {
        Assert.Equal(0x38, E4M3.FromFloat(1f));
        Assert.Equal(0x7E, E4M3.FromFloat(448f));
        Assert.Equal(0x01, E4M3.FromFloat(1f / 512));
        Assert.Equal(448f, E4M3.ToFloat(0x7E));
        Assert.True(float.IsNaN(E4M3.ToFloat(0x7F)));
        Assert.True(float.IsNaN(E4M3.ToFloat(0xFF)));
        Assert.Equal([0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f], Enumerable.Range(0, 8).Select(E2M1.Decode).ToArray());
        Assert.Equal(0f, E2M1.Decode(0x8));
        Assert.Equal(-6f, E2M1.Decode(0xF));
        Assert.Equal(0x8, E2M1.Encode(-0.1f));
        Assert.Equal(0x0, E2M1.Encode(-0f));
        Assert.Equal(0x7, E2M1.Encode(float.PositiveInfinity));
        Assert.Equal(0x7, E2M1.Encode(float.NaN));
        Assert.Equal(0xF, E2M1.Encode(-100f));
    }
}
