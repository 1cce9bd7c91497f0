using System.Runtime.InteropServices;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// The error bound must never fail a correct encoding (whatever the data, scale order or shared group amax) and must
/// fail the mix-ups it exists to catch.
/// </summary>
public sealed class ErrorBoundTests
{
    private const int Rows = 48;
    private const int Cols = 256;

    public static TheoryData<string, DType, GlobalScaleOrder, float> Encodings()
    {
        var data = new TheoryData<string, DType, GlobalScaleOrder, float>();
        foreach (var shape in new[] { "gaussian", "outliers", "wide", "ties", "zero-blocks" })
            foreach (var dtype in new[] { DType.BF16, DType.F16, DType.F32 })
                foreach (var order in Enum.GetValues<GlobalScaleOrder>())
                    foreach (var groupFactor in new[] { 1f, 1.7f, 3e4f })
                        data.Add(shape, dtype, order, groupFactor);
        return data;
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void CorrectEncodingIsWithinTheBound(string shape, DType dtype, GlobalScaleOrder order, float groupFactor)
    {
        var (source, packed, scales, weightScale2) = Encode(shape, dtype, order, groupFactor, seed: shape.Length * 7919 + (int)dtype);

        var tally = Measure(source, dtype, packed, scales, weightScale2, nibblesSwapped: false);

        Assert.Equal(0, tally.Violations);
        Assert.Equal((long)Rows * Cols, tally.Elements);
    }

    [Fact]
    public void SubnormalBlockScalesAreCovered()
    {
        // A shared amax 30,000 times the tensor's pushes block scales into E4M3's subnormals, where rounding is coarsest.
        var (_, _, scales, _) = Encode("wide", DType.F32, GlobalScaleOrder.Cuda, 3e4f, seed: 5);
        Assert.Contains(scales, s => s is > 0 and < 0x08);
    }

    [Fact]
    public void SwappedNibblesExceedTheBound()
    {
        var (source, packed, scales, weightScale2) = Encode("gaussian", DType.BF16, GlobalScaleOrder.Cuda, 1f, seed: 11);

        Assert.True(Measure(source, DType.BF16, packed, scales, weightScale2, nibblesSwapped: true).Violations > Rows * Cols / 4);
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(0.5)]
    [InlineData(1.25)]
    public void WrongGlobalScaleExceedsTheBound(double factor)
    {
        var (source, packed, scales, weightScale2) = Encode("gaussian", DType.BF16, GlobalScaleOrder.Cuda, 1f, seed: 13);

        Assert.True(Measure(source, DType.BF16, packed, scales, weightScale2 * factor, nibblesSwapped: false).Violations > 0);
    }

    [Fact]
    public void BlockScalesOfAnotherRowExceedTheBound()
    {
        var (source, packed, scales, weightScale2) = Encode("outliers", DType.BF16, GlobalScaleOrder.Cuda, 1f, seed: 17);
        var shifted = scales.Skip(Cols / 16).Concat(scales.Take(Cols / 16)).ToArray();

        Assert.True(Measure(source, DType.BF16, packed, shifted, weightScale2, nibblesSwapped: false).Violations > 0);
    }

    /// <summary>Searched scales (every block at a quarter of its max scale) clip the top values on purpose: still within the bound.</summary>
    [Theory]
    [InlineData("gaussian")]
    [InlineData("outliers")]
    public void ClippingSearchedScalesAreWithinTheBound(string shape)
    {
        var (source, _, scales, weightScale2) = Encode(shape, DType.BF16, GlobalScaleOrder.Cuda, 1f, seed: 23);
        var smaller = scales.Select(b => b > 0x10 ? (byte)(b - 0x10) : b).ToArray(); // two binades down
        var packed = new byte[Rows * Cols / 2];
        Nvfp4Static.Quantize("test", source, DType.BF16, Rows, Cols, smaller, weightScale2, packed);

        var tally = Measure(source, DType.BF16, packed, smaller, weightScale2, nibblesSwapped: false);
        Assert.Equal(0, tally.Violations);
        Assert.True(tally.Passes(reroundedCodesAllowed: false));
        Assert.False(tally.IsGptqLike);
        Assert.True(Measure(source, DType.BF16, packed, smaller, weightScale2, nibblesSwapped: true).Violations > Rows * Cols / 4);
    }

    /// <summary>
    /// GPTQ-like codes (max scales, codes moved by one step in some places) pass as a whole; swapped nibbles on the same
    /// max scales do not; moved codes on other scales do not.
    /// </summary>
    [Fact]
    public void ReroundedCodesOnMaxScalesPassAsAWhole()
    {
        var (source, packed, scales, weightScale2) = Encode("gaussian", DType.BF16, GlobalScaleOrder.Cuda, 1f, seed: 29);
        var moved = (byte[])packed.Clone();
        for (int i = 0; i < moved.Length; i += 37)
            if ((moved[i] & 7) is > 0 and < 7) moved[i]++; // one E2M1 step up in the low nibble
        var rerounded = Measure(source, DType.BF16, moved, scales, weightScale2, nibblesSwapped: false);
        Assert.True(rerounded.Violations > 0);
        Assert.True(rerounded.IsGptqLike);
        Assert.True(rerounded.Passes(reroundedCodesAllowed: true));
        Assert.False(rerounded.Passes(reroundedCodesAllowed: false));

        Assert.False(Measure(source, DType.BF16, packed, scales, weightScale2, nibblesSwapped: true).Passes(reroundedCodesAllowed: true));
        var smaller = scales.Select(b => b > 0x10 ? (byte)(b - 0x10) : b).ToArray();
        Assert.False(Measure(source, DType.BF16, moved, smaller, weightScale2, nibblesSwapped: false).Passes(reroundedCodesAllowed: true));
    }

    private static ErrorTally Measure(byte[] source, DType dtype, byte[] packed, byte[] scales, double weightScale2, bool nibblesSwapped)
    {
        var tally = new ErrorTally();
        int size = DTypes.SizeOf(dtype);
        for (int r = 0; r < Rows; r++)
        {
            BoundCheck.AccumulateRow(source.AsSpan(r * Cols * size, Cols * size), dtype, packed.AsSpan(r * Cols / 2, Cols / 2),
                scales.AsSpan(r * Cols / 16, Cols / 16), weightScale2, nibblesSwapped, r, ref tally);
        }
        return tally;
    }

    /// <summary>Quantizes generated data with the product's bit-exact quantizer (the encoding under test is correct by construction).</summary>
    private static (byte[] Source, byte[] Packed, byte[] Scales, float WeightScale2) Encode(string shape, DType dtype, GlobalScaleOrder order, float groupFactor, int seed)
    {
        var values = Generate(shape, new Random(seed));
        byte[] source = dtype switch
        {
            DType.BF16 => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
            DType.F16 => MemoryMarshal.AsBytes(values.Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray().AsSpan()).ToArray(),
            _ => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
        };
        float amax = Amax.ComputeFinite("test", source, dtype);
        var packed = new byte[Rows * Cols / 2];
        var scales = new byte[Rows * Cols / 16];
        var result = Nvfp4.Quantize("test", source, dtype, Rows, Cols, packed, scales,
            new Nvfp4Options { GlobalAmax = amax * groupFactor, Order = order });
        return (source, packed, scales, result.WeightScale2);
    }

    private static float[] Generate(string shape, Random random)
    {
        var values = new float[Rows * Cols];
        for (int i = 0; i < values.Length; i++)
        {
            double gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            int block = i / 16;
            values[i] = shape switch
            {
                "gaussian" => (float)(0.02 * gaussian),
                "outliers" => (float)(random.Next(50) == 0 ? 3 * gaussian : 0.01 * gaussian),
                // Block magnitudes from 1e-7 to 10 (F16 flushes the smallest to subnormals or zero, also fine).
                "wide" => (float)(gaussian * Math.Pow(10, -7 + block % 9)),
                // Multiples of quarter steps land exactly on E2M1 rounding boundaries once scaled.
                "ties" => random.Next(-24, 25) * 0.25f * (block % 3 + 1),
                "zero-blocks" => block % 3 == 0 ? 0f : (float)(0.05 * gaussian),
                _ => throw new ArgumentOutOfRangeException(nameof(shape)),
            };
        }
        return values;
    }
}
