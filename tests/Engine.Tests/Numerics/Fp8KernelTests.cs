using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// Every FP8 kernel path against the scalar definition (<see cref="E4M3.FromFloat"/> per element), byte for byte, for
/// every source/rounding pairing the API uses, on every BF16 and F16 bit pattern and on random fp32 patterns
/// (NaN, Inf, subnormals included), with divisors from fp32-subnormal to huge.
/// </summary>
public class Fp8KernelTests
{
    public static TheoryData<string> Paths() => NumericsData.Paths();

    private static readonly (DType Source, DType RoundTo)[] Pairings =
        [(DType.BF16, DType.BF16), (DType.F16, DType.F16), (DType.F32, DType.F32), (DType.F32, DType.BF16), (DType.F32, DType.F16)];

    private static readonly float[] Divisors =
        [Fp8.WeightScale(1f), Fp8.WeightScale(0.75f), 0.0016736984f, 1f, 3.5f, MathF.ScaleB(1f, -140), 1e30f, 6e-8f];

    private static uint Capped(uint bits) => Math.Min(bits, 0x7F80_0000u); // NaN and Inf both mean "non-finite" here

    private static void AssertPathMatchesScalar(byte[] source, DType sourceType, DType roundTo, float divisor, KernelPath path)
    {
        int count = source.Length / DTypes.SizeOf(sourceType);
        var expected = new byte[count];
        var actual = new byte[count];
        actual.AsSpan().Fill(0xCC); // so that a byte the kernel never writes shows up
        Fp8KernelStats reference = Fp8Kernel.Quantize(source, sourceType, roundTo, divisor, expected, KernelPath.Scalar);
        Fp8KernelStats fast = Fp8Kernel.Quantize(source, sourceType, roundTo, divisor, actual, path);
        int first = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(first == count,
            $"{sourceType}→{roundTo} {path} divisor {divisor:R}: byte {first} is 0x{(first < count ? actual[first] : 0):X2}, scalar 0x{(first < count ? expected[first] : 0):X2}, "
            + $"w = {(first < count ? Nvfp4Reference.ReadElement(source, sourceType, first) : 0):R}");
        Assert.Equal(reference.MaxAbsBits, fast.MaxAbsBits);
        Assert.Equal(Capped(reference.MaxQuotientBits), Capped(fast.MaxQuotientBits));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Every16BitPattern_GivesTheScalarBytes(string pathName)
    {
        // All 65536 patterns (NaN, Inf, subnormals, both zeros), plus 37 extra elements for an odd-length tail.
        byte[] source = MemoryMarshal.AsBytes(Enumerable.Range(0, 65536 + 37).Select(i => (ushort)(i * 40503)).ToArray().AsSpan()).ToArray();
        foreach (DType dtype in new[] { DType.BF16, DType.F16 })
        {
            foreach (float divisor in Divisors)
            {
                AssertPathMatchesScalar(source, dtype, dtype, divisor, NumericsData.Path(pathName));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RandomFp32Patterns_GiveTheScalarBytes(string pathName)
    {
        var random = new Random(8);
        var values = new float[50_003];
        for (int i = 0; i < values.Length; i++)
        {
            // Half raw patterns (every class of fp32), half values near the E4M3 range once divided.
            values[i] = i % 2 == 0
                ? BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32))
                : (float)((random.NextDouble() * 2 - 1) * 600);
        }

        byte[] source = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        foreach ((DType sourceType, DType roundTo) in Pairings.Where(p => p.Source == DType.F32))
        {
            foreach (float divisor in Divisors)
            {
                AssertPathMatchesScalar(source, sourceType, roundTo, divisor, NumericsData.Path(pathName));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void ParallelChunks_GiveTheScalarBytes(string pathName)
    {
        // 700_001 elements: three chunks of 2^18 and a ragged end; weight-like values.
        float[] values = NumericsData.WeightLike(7, 100_000, 5).Append(0.125f).ToArray();
        float divisor = Fp8.WeightScale(values.Max(MathF.Abs));
        foreach ((DType sourceType, DType roundTo) in Pairings)
        {
            byte[] source = NumericsData.Encode(values, sourceType);
            AssertPathMatchesScalar(source, sourceType, roundTo, divisor, NumericsData.Path(pathName));
        }
    }

    [Fact]
    public void SingleThreaded_GivesTheSameBytes()
    {
        float[] values = NumericsData.WeightLike(300, 1000, 6);
        byte[] source = NumericsData.Encode(values, DType.BF16);
        float divisor = Fp8.WeightScale(values.Max(MathF.Abs));
        var parallel = new byte[values.Length];
        var single = new byte[values.Length];
        Fp8Kernel.Quantize(source, DType.BF16, DType.BF16, divisor, parallel, KernelPath.Auto);
        Fp8Kernel.QuantizeSingleThreaded(source, DType.BF16, divisor, single, KernelPath.Auto);
        Assert.Equal(parallel, single);
    }

    [Fact]
    public void VectorF16Rounding_EqualsDotNetHalfConversion()
    {
        // A stride through all 2^32 fp32 patterns plus every pattern around F16's subnormal/normal and overflow edges.
        var probes = new List<float>();
        for (long bits = 0; bits < 1L << 32; bits += 997)
        {
            probes.Add(BitConverter.UInt32BitsToSingle((uint)bits));
        }

        foreach (float edge in new[] { MathF.ScaleB(1f, -14), MathF.ScaleB(1f, -24), MathF.ScaleB(1f, -25), 65504f, 65520f, 65536f })
        {
            uint centre = BitConverter.SingleToUInt32Bits(edge);
            for (uint bits = centre - 5000; bits < centre + 5000; bits++)
            {
                probes.Add(BitConverter.UInt32BitsToSingle(bits));
                probes.Add(-BitConverter.UInt32BitsToSingle(bits));
            }
        }

        while (probes.Count % 16 != 0)
        {
            probes.Add(0f);
        }

        float[] all = probes.ToArray();
        for (int i = 0; i < all.Length; i += 16)
        {
            var block = Vector512.Create(all.AsSpan(i, 16));
            Vector512<float> wide = F16Rounding.Round(block);
            Vector256<float> low = F16Rounding.Round(block.GetLower()), high = F16Rounding.Round(block.GetUpper());
            for (int k = 0; k < 16; k++)
            {
                float expected = F16Rounding.Round(all[i + k]);
                uint expectedBits = BitConverter.SingleToUInt32Bits(float.IsNaN(expected) ? MathF.CopySign(float.PositiveInfinity, expected) : expected);
                Assert.True(expectedBits == BitConverter.SingleToUInt32Bits(wide.GetElement(k)), $"{all[i + k]:R}: Half {expected:R}, 512 {wide.GetElement(k):R}");
                Assert.Equal(expectedBits, BitConverter.SingleToUInt32Bits(k < 8 ? low.GetElement(k) : high.GetElement(k - 8)));
            }
        }
    }
}
