using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

public class AmaxTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Amax_IsMaxAbs_OnEveryLength(string pathName, DType dtype)
    {
        var random = new Random(2);
        foreach (int length in new[] { 0, 1, 7, 31, 64, 65, 1000, (1 << 20) + 3, 3 << 20 })
        {
            float[] values = new float[length];
            for (int i = 0; i < length; i++)
            {
                values[i] = (float)(random.NextDouble() * 2 - 1);
            }

            if (length > 0)
            {
                values[random.Next(length)] = -1.75f; // the largest magnitude is negative
            }

            byte[] source = NumericsData.Encode(values, dtype);
            float expected = 0f;
            for (int i = 0; i < length; i++)
            {
                expected = MathF.Max(expected, MathF.Abs(Nvfp4Reference.ReadElement(source, dtype, i)));
            }

            AmaxResult result = Amax.Compute(source, dtype, NumericsData.Path(pathName));
            Assert.True(result.IsFinite);
            Assert.Equal(expected, result.Amax);
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Amax_ReportsTheFirstNonFiniteIndex(string pathName, DType dtype)
    {
        const int length = (3 << 20) + 5;
        foreach (int first in new[] { 0, 5, (1 << 20) - 1, 1 << 20, length - 1 })
        {
            float[] values = new float[length];
            values[first] = float.NegativeInfinity;
            if (first + 100 < length)
            {
                values[first + 100] = float.NaN;
            }

            if (first + (2 << 20) < length)
            {
                values[first + (2 << 20)] = float.PositiveInfinity; // in a later parallel chunk
            }

            AmaxResult result = Amax.Compute(NumericsData.Encode(values, dtype), dtype, NumericsData.Path(pathName));
            Assert.False(result.IsFinite);
            Assert.Equal(first, result.FirstNonFiniteIndex);
        }
    }

    [Fact]
    public void Amax_Fp32Overloads_AndComputeFinite()
    {
        float[] values = [1f, -3f, 2f];
        Assert.Equal(3f, Amax.Compute(values).Amax);
        Assert.Equal(3f, Amax.ComputeFinite("t", MemoryMarshal.AsBytes(values.AsSpan()), DType.F32));
        values[1] = float.NaN;
        var error = Assert.Throws<ModelOptException>(() => Amax.ComputeFinite("lm.w", MemoryMarshal.AsBytes(values.AsSpan()), DType.F32));
        Assert.Equal(NumericsErrorIds.NonFiniteWeight, error.ErrorId);
        Assert.Contains("'lm.w'", error.Message);
        Assert.Contains("flat index 1 ", error.Message);
    }

    [Fact]
    public void Amax_LargestFiniteValues()
    {
        Assert.Equal(65504f, Amax.Compute(NumericsData.Encode([1f, -65504f], DType.F16), DType.F16).Amax);
        Assert.Equal(float.MaxValue, Amax.Compute([float.MinValue, 1f]).Amax);
        byte[] bf16Max = [0x7F, 0x7F, 0x00, 0x00]; // 0x7F7F = largest finite bf16
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x7F7F0000u), Amax.Compute(bf16Max, DType.BF16).Amax);
    }
}
