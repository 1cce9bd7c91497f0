using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>Static NVFP4 (given block scales): equal to the dynamic path with the dynamic scales, on every kernel path.</summary>
public class Nvfp4StaticTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void WithDynamicScales_ReproducesDynamicQuantization(string pathName, DType dtype)
    {
        KernelPath path = NumericsData.Path(pathName);
        (int Rows, int Cols)[] shapes = [(1, 16), (3, 48), (5, 272), (70, 4096)];
        int seed = 30;
        foreach (var (rows, cols) in shapes)
        {
            foreach (float[] values in new[] { NumericsData.WeightLike(rows, cols, seed++), NumericsData.Adversarial(rows, cols, MathF.ScaleB(1f, -10), dtype, seed++) })
            {
                byte[] source = NumericsData.Encode(values, dtype);
                var packed = new byte[Nvfp4.PackedLength(rows, cols)];
                var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
                Nvfp4Result dynamic = Nvfp4.Quantize("t", source, dtype, rows, cols, packed, scales);
                if (scales.Any(s => s == 0 || s >= 0x7F))
                {
                    continue; // not reachable: the dynamic rule clamps to [2^-9, 448]
                }

                var staticPacked = new byte[packed.Length];
                staticPacked.AsSpan().Fill(0xCC);
                Nvfp4Result result = Nvfp4Static.Quantize("t", source, dtype, rows, cols, scales, dynamic.WeightScale2, staticPacked, path);
                Assert.Equal(packed, staticPacked);
                Assert.Equal(dynamic.TensorAmax, result.TensorAmax);
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void SearchedScales_QuantizeAndFakeQuantizeAgree(string pathName, DType dtype)
    {
        KernelPath path = NumericsData.Path(pathName);
        const int rows = 6, cols = 96;
        float[] values = NumericsData.WeightLike(rows, cols, 77).Select(v => NumericsData.RoundTo(v, dtype)).ToArray();
        byte[] source = NumericsData.Encode(values, dtype);
        float amax = values.Max(MathF.Abs);
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        Nvfp4Search.Fp8ScaleSweep("t", source, dtype, rows, cols, amax, scales);
        float weightScale2 = GlobalScale.ForWeight(amax);
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        Nvfp4Static.Quantize("t", source, dtype, rows, cols, scales, weightScale2, packed, path);

        // Scalar definition of each packed code: E2M1 rounding of w / fl32(v·wsf2).
        for (int i = 0; i < values.Length; i++)
        {
            float divisor = E4M3.ToFloat(scales[i / 16]) * weightScale2;
            int code = (packed[i / 2] >> (4 * (i % 2))) & 0xF;
            Assert.Equal(E2M1.Encode(values[i] / divisor), code);
        }

        var expected = new float[values.Length];
        Nvfp4.Dequantize(packed, scales, weightScale2, rows, cols, expected);
        float[] fake = values.ToArray();
        Nvfp4Static.FakeQuantizeInPlace(fake, rows, cols, scales, weightScale2, "t", path);
        Assert.Equal(expected, fake);

        // The searched scales never lose to the dynamic ones on the squared error they minimise.
        var dynamicPacked = new byte[packed.Length];
        var dynamicScales = new byte[scales.Length];
        Nvfp4.Quantize("t", source, dtype, rows, cols, dynamicPacked, dynamicScales, new Nvfp4Options { GlobalAmax = amax });
        for (int b = 0; b < scales.Length; b++)
        {
            float[] block = values.AsSpan(b * 16, 16).ToArray();
            Assert.True(SearchReference.Loss(block, scales[b], weightScale2, null) <= SearchReference.Loss(block, dynamicScales[b], weightScale2, null));
        }
    }

    [Fact]
    public void InvalidScalesOrWeightScale2_AreRefused()
    {
        byte[] source = NumericsData.Encode(new float[32], DType.F32);
        var packed = new byte[16];
        foreach (byte bad in new byte[] { 0x00, 0x7F, 0x80, 0xB8 })
        {
            var error = Assert.Throws<ModelOptException>(() => Nvfp4Static.Quantize("t", source, DType.F32, 1, 32, [0x38, bad], 1f, packed));
            Assert.Equal(NumericsErrorIds.InvalidBlockScale, error.ErrorId);
        }

        foreach (float bad in new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
        {
            var error = Assert.Throws<ModelOptException>(() => Nvfp4Static.Quantize("t", source, DType.F32, 1, 32, [0x38, 0x38], bad, packed));
            Assert.Equal(NumericsErrorIds.InvalidWeightScale2, error.ErrorId);
        }

        byte[] inf = NumericsData.Encode(Enumerable.Range(0, 32).Select(i => i == 20 ? float.PositiveInfinity : 0f).ToArray(), DType.F32);
        Assert.Equal(NumericsErrorIds.NonFiniteWeight,
            Assert.Throws<ModelOptException>(() => Nvfp4Static.Quantize("t", inf, DType.F32, 1, 32, [0x38, 0x38], 1f, packed)).ErrorId);
    }
}
