using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// The fast kernel (each SIMD path and the scalar fallback) against the scalar reference, byte for byte,
/// for BF16, F16 and F32 sources, on weight-like and adversarial tensors.
/// </summary>
public class KernelEquivalenceTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    private static void AssertSameAsReference(float[] values, DType dtype, int rows, int cols, float weightScale2, KernelPath path, string what)
    {
        byte[] source = NumericsData.Encode(values, dtype);
        var expectedPacked = new byte[Nvfp4.PackedLength(rows, cols)];
        var expectedScales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Reference.Quantize(source, dtype, rows, cols, weightScale2, expectedPacked, expectedScales);

        var packed = new byte[expectedPacked.Length];
        var scales = new byte[expectedScales.Length];
        packed.AsSpan().Fill(0xCC); // so that a byte the kernel never writes shows up
        scales.AsSpan().Fill(0xCC);
        uint maxBits = Nvfp4Kernel.Quantize(source, dtype, rows, cols, weightScale2, packed, scales, path);

        int scaleMismatch = expectedScales.AsSpan().CommonPrefixLength(scales);
        Assert.True(scaleMismatch == scales.Length,
            $"{what} {dtype} {path} [{rows},{cols}]: scale {scaleMismatch} is 0x{(scaleMismatch < scales.Length ? scales[scaleMismatch] : 0):X2}, "
            + $"reference 0x{(scaleMismatch < scales.Length ? expectedScales[scaleMismatch] : 0):X2}");
        int packedMismatch = expectedPacked.AsSpan().CommonPrefixLength(packed);
        Assert.True(packedMismatch == packed.Length,
            $"{what} {dtype} {path} [{rows},{cols}]: packed byte {packedMismatch} is 0x{(packedMismatch < packed.Length ? packed[packedMismatch] : 0):X2}, "
            + $"reference 0x{(packedMismatch < packed.Length ? expectedPacked[packedMismatch] : 0):X2}");

        float expectedMax = 0f;
        for (long i = 0; i < (long)rows * cols; i++)
        {
            expectedMax = MathF.Max(expectedMax, MathF.Abs(Nvfp4Reference.ReadElement(source, dtype, i)));
        }

        Assert.Equal(BitConverter.SingleToUInt32Bits(expectedMax), maxBits);
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void WeightLike_SmallShapes(string pathName, DType dtype)
    {
        // Shapes with block counts that are not multiples of the 16-block group, single rows, single blocks.
        (int Rows, int Cols)[] shapes = [(1, 16), (1, 32), (3, 48), (2, 240), (5, 272), (7, 16), (17, 4096 + 16), (64, 64)];
        int seed = 1;
        foreach (var (rows, cols) in shapes)
        {
            float[] values = NumericsData.WeightLike(rows, cols, seed++);
            float amax = values.Max(MathF.Abs);
            AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax), NumericsData.Path(pathName), "weight-like");
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void WeightLike_ParallelShape(string pathName, DType dtype)
    {
        // Large enough for several parallel chunks; rows that do not divide evenly into chunks.
        const int rows = 301, cols = 2048 + 64;
        float[] values = NumericsData.WeightLike(rows, cols, 42);
        float amax = values.Max(MathF.Abs);
        AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax), NumericsData.Path(pathName), "weight-like");
        AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax, GlobalScaleOrder.Cpu), NumericsData.Path(pathName), "weight-like cpu order");
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Adversarial(string pathName, DType dtype)
    {
        // Power-of-two global scales make the crafted ties exact; F16's narrow range needs scales near 1/2688.
        float[] scales2 = dtype == DType.F16 ? [1f / 4096, 1f / 1024, 1f / 65536] : [1f / 4096, 1f / 1024, 1f / 65536, 1f / (1 << 30), 1024f];
        int seed = 100;
        foreach (float weightScale2 in scales2)
        {
            foreach (var (rows, cols) in new[] { (4, 256), (33, 80), (200, 1024) })
            {
                float[] values = NumericsData.Adversarial(rows, cols, weightScale2, dtype, seed++);
                AssertSameAsReference(values, dtype, rows, cols, weightScale2, NumericsData.Path(pathName), $"adversarial wsf2={weightScale2:R}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Adversarial_NonPowerOfTwoScale(string pathName, DType dtype)
    {
        // The same kinds of blocks against an ordinary (not power-of-two) weight_scale_2.
        float weightScale2 = GlobalScale.FromAmax(0.8984375f);
        float[] values = NumericsData.Adversarial(97, 512, weightScale2, dtype, 7);
        AssertSameAsReference(values, dtype, 97, 512, weightScale2, NumericsData.Path(pathName), "adversarial");
    }

    [Fact]
    public void Adversarial_DataReallyHoldsTies()
    {
        // Guard against a generator that drifts: the BF16 adversarial tensor must contain exact E2M1 ties after
        // scaling (w / d exactly on a bound) and E4M3 ties in the scale.
        float weightScale2 = 1f / 4096;
        float[] values = NumericsData.Adversarial(200, 1024, weightScale2, DType.BF16, 9);
        byte[] source = NumericsData.Encode(values, DType.BF16);
        int e2m1Ties = 0, e4m3Ties = 0, subnormalScales = 0, minClamps = 0, maxClamps = 0;
        float[] bounds = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f];
        for (int b = 0; b < values.Length / 16; b++)
        {
            float blockAmax = 0f;
            for (int i = 0; i < 16; i++)
            {
                blockAmax = MathF.Max(blockAmax, MathF.Abs(Nvfp4Reference.ReadElement(source, DType.BF16, b * 16 + i)));
            }

            float s = blockAmax / (6f * weightScale2);
            byte scale = Nvfp4Reference.BlockScale(blockAmax, weightScale2);
            float d = E4M3.ToFloat(scale) * weightScale2;
            e4m3Ties += s is > 0f and < 448f && E4M3.ToFloat(E4M3.FromFloat(s)) != s
                && (E4M3.ToFloat(E4M3.FromFloat(MathF.BitIncrement(s))) != E4M3.ToFloat(E4M3.FromFloat(MathF.BitDecrement(s)))) ? 1 : 0;
            subnormalScales += scale is >= 1 and < 8 ? 1 : 0;
            minClamps += s > 0f && s < 1f / 512 ? 1 : 0;
            maxClamps += s > 448f ? 1 : 0;
            for (int i = 0; i < 16; i++)
            {
                float x = MathF.Abs(Nvfp4Reference.ReadElement(source, DType.BF16, b * 16 + i) / d);
                e2m1Ties += bounds.Contains(x) ? 1 : 0;
            }
        }

        Assert.True(e2m1Ties > 1000, $"{e2m1Ties} E2M1 ties");
        Assert.True(e4m3Ties > 100, $"{e4m3Ties} E4M3 ties");
        Assert.True(subnormalScales > 100, $"{subnormalScales} subnormal scales");
        Assert.True(minClamps > 100, $"{minClamps} blocks clamped at 2^-9");
        Assert.True(maxClamps > 100, $"{maxClamps} blocks clamped at 448");
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void RandomBitPatterns(string pathName, DType dtype)
    {
        // Arbitrary finite bit patterns of the source type: every exponent, subnormals, both zeros.
        var random = new Random(11);
        const int rows = 64, cols = 512;
        int size = DTypes.SizeOf(dtype);
        var source = new byte[rows * cols * size];
        random.NextBytes(source);
        for (long i = 0; i < (long)rows * cols; i++)
        {
            // Clear exponent-all-ones patterns (NaN/Inf) by dropping the top exponent bit.
            if (!float.IsFinite(Nvfp4Reference.ReadElement(source, dtype, i)))
            {
                source[i * size + size - 1] &= 0xBF;
            }
        }

        float amax = 0f;
        for (long i = 0; i < (long)rows * cols; i++)
        {
            amax = MathF.Max(amax, MathF.Abs(Nvfp4Reference.ReadElement(source, dtype, i)));
        }

        float[] values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Nvfp4Reference.ReadElement(source, dtype, i);
        }

        KernelPath path = NumericsData.Path(pathName);
        AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax), path, "random bits");

        // Also with a scale far too small for the data (saturation everywhere) and far too big (clamps at 2^-9).
        AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax) / 1e6f, path, "random bits, saturating");
        AssertSameAsReference(values, dtype, rows, cols, GlobalScale.ForWeight(amax) * 1e6f, path, "random bits, tiny scales");
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void PublicQuantize_EqualsReference(string pathName, DType dtype)
    {
        // Through the façade (amax pass + kernel), with and without a given global amax.
        const int rows = 129, cols = 1040;
        float[] values = NumericsData.WeightLike(rows, cols, 5);
        byte[] source = NumericsData.Encode(values, dtype);
        float amax = Amax.Compute(source, dtype).Amax;
        foreach (float? given in new float?[] { null, amax * 3f })
        {
            var options = new Nvfp4Options { Path = NumericsData.Path(pathName), GlobalAmax = given };
            var packed = new byte[Nvfp4.PackedLength(rows, cols)];
            var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
            Nvfp4Result result = Nvfp4.Quantize("t", source, dtype, rows, cols, packed, scales, options);
            Assert.Equal(GlobalScale.FromAmax(given ?? amax), result.WeightScale2);
            Assert.Equal(amax, result.TensorAmax);
            Assert.Equal(Nvfp4Flags.None, result.Flags);
            Assert.Empty(result.Warnings);

            var expectedPacked = new byte[packed.Length];
            var expectedScales = new byte[scales.Length];
            Nvfp4Reference.Quantize(source, dtype, rows, cols, result.WeightScale2, expectedPacked, expectedScales);
            Assert.Equal(expectedScales, scales);
            Assert.Equal(expectedPacked, packed);
        }
    }
}
