using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using TorchSharp;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// The FP8 scale sweep (MSE and local Hessian) and the multiplier search, every kernel path against the independent
/// <see cref="SearchReference"/>, plus brute-force optimality on random and adversarial blocks.
/// </summary>
public class Nvfp4SearchTests
{
    public static TheoryData<string, DType> PathsAndTypes() => NumericsData.PathsAndTypes();

    public static TheoryData<string> Paths() => NumericsData.Paths();

    private static float[] Block(float[] values, DType dtype, int b) =>
        Enumerable.Range(b * 16, 16).Select(i => NumericsData.RoundTo(values[i], dtype)).ToArray();

    /// <summary>H = XᵀX/N per 16-wide input block from random activations (symmetric, positive semi-definite).</summary>
    private static float[] RandomHessian(int cols, int seed)
    {
        var random = new Random(seed);
        const int tokens = 24;
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1) * (i % 7 == 0 ? 8f : 1f);
        }

        var h = new float[cols / 16 * 256];
        for (int block = 0; block < cols / 16; block++)
        {
            for (int i = 0; i < 16; i++)
            {
                for (int j = 0; j < 16; j++)
                {
                    float sum = 0f;
                    for (int t = 0; t < tokens; t++)
                    {
                        sum += x[t * cols + block * 16 + i] * x[t * cols + block * 16 + j];
                    }

                    h[block * 256 + i * 16 + j] = sum / tokens;
                }
            }
        }

        return h;
    }

    private static byte[] Run(bool multiplier, float[] values, DType dtype, int rows, int cols, float globalAmax, float[]? hessian, KernelPath path)
    {
        var scales = new byte[rows * cols / 16];
        scales.AsSpan().Fill(0xCC);
        byte[] source = NumericsData.Encode(values, dtype);
        if (multiplier)
        {
            Nvfp4Search.Search<MultiplierChooser>("t", source, dtype, rows, cols, globalAmax, scales, hessian, path);
        }
        else
        {
            Nvfp4Search.Search<SweepChooser>("t", source, dtype, rows, cols, globalAmax, scales, hessian, path);
        }

        return scales;
    }

    private static void AssertMatchesReference(bool multiplier, float[] values, DType dtype, int rows, int cols, float globalAmax, float[]? hessian, KernelPath path)
    {
        byte[] scales = Run(multiplier, values, dtype, rows, cols, globalAmax, hessian, path);
        float weightScale2 = GlobalScale.ForWeight(globalAmax);
        for (int b = 0; b < scales.Length; b++)
        {
            float[]? h = hessian?.AsSpan(b % (cols / 16) * 256, 256).ToArray();
            float[] block = Block(values, dtype, b);
            byte expected = multiplier ? SearchReference.MultiplierSearch(block, weightScale2, h) : SearchReference.Sweep(block, weightScale2, h);
            Assert.True(expected == scales[b],
                $"{(multiplier ? "multiplier" : "sweep")} {dtype} {path} H={hessian != null} block {b}: 0x{scales[b]:X2}, reference 0x{expected:X2}");
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Sweep_MatchesReference_WeightLike(string pathName, DType dtype)
    {
        (int Rows, int Cols)[] shapes = [(1, 16), (3, 48), (5, 272), (40, 64)];
        int seed = 11;
        foreach (var (rows, cols) in shapes)
        {
            float[] values = NumericsData.WeightLike(rows, cols, seed++);
            float amax = values.Max(v => MathF.Abs(NumericsData.RoundTo(v, dtype)));
            KernelPath path = NumericsData.Path(pathName);
            AssertMatchesReference(false, values, dtype, rows, cols, amax, null, path);
            AssertMatchesReference(false, values, dtype, rows, cols, amax, RandomHessian(cols, seed), path);
            AssertMatchesReference(true, values, dtype, rows, cols, amax, null, path);
            AssertMatchesReference(true, values, dtype, rows, cols, amax, RandomHessian(cols, seed + 100), path);
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void Sweep_MatchesReference_Adversarial(string pathName, DType dtype)
    {
        const int rows = 24, cols = 64;
        float weightScale2 = MathF.ScaleB(1f, -12);
        float[] values = NumericsData.Adversarial(rows, cols, weightScale2, dtype, 5);
        float amax = values.Max(v => MathF.Abs(NumericsData.RoundTo(v, dtype)));
        KernelPath path = NumericsData.Path(pathName);
        foreach (float globalAmax in new[] { amax, amax * 0.25f, amax * 3f })
        {
            AssertMatchesReference(false, values, dtype, rows, cols, globalAmax, null, path);
            AssertMatchesReference(false, values, dtype, rows, cols, globalAmax, RandomHessian(cols, 3), path);
            AssertMatchesReference(true, values, dtype, rows, cols, globalAmax, null, path);
        }
    }

    /// <summary>
    /// The chosen byte is a best candidate: no candidate has a smaller loss, and every candidate before it has a larger
    /// one (first minimum), checked by brute force over all 126 with the reference loss.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Sweep_ChoosesTheFirstBestCandidate_BruteForce(string pathName)
    {
        float globalAmax = 1.7f;
        float weightScale2 = GlobalScale.ForWeight(globalAmax);
        float D(int code) => SearchReference.CandidateValue((byte)code) * weightScale2;
        var random = new Random(7);
        var blocks = new List<float[]>
        {
            new float[16], // zero block: every loss is 0, so the first candidate (0x01)
            Enumerable.Range(0, 16).Select(i => i == 5 ? globalAmax : 1e-4f * (i - 8)).ToArray(), // one huge outlier
            Enumerable.Range(0, 16).Select(i => i == 0 ? 3f * D(0x40) : 0f).ToArray(), // exact at several scales: a tie at loss 0
            new[] { 6f, 4, 3, 2, 1.5f, 1, 0.5f, 0, -6, -4, -3, -2, -1.5f, -1, -0.5f, 0 }.Select(v => v * D(0x7E)).ToArray(), // best is 448 only
            Enumerable.Range(0, 16).Select(i => (i % 3 == 0 ? 1f : 0.5f) * D(0x01)).ToArray(), // subnormal scale 2^-9 exact
            Enumerable.Range(0, 16).Select(i => (float)(random.NextDouble() - 0.5) * 5f * D(0x05)).ToArray(), // subnormal-scale block
            Enumerable.Range(0, 16).Select(i => globalAmax * (i % 2 == 0 ? 1f : -1f)).ToArray(), // all at the global amax
        };
        for (int k = 0; k < 40; k++)
        {
            float spread = MathF.Pow(10f, -(float)random.NextDouble() * 4f);
            blocks.Add(Enumerable.Range(0, 16).Select(_ => (float)(random.NextDouble() * 2 - 1) * spread * globalAmax).ToArray());
        }

        float[] values = blocks.SelectMany(b => b).ToArray();
        int rows = blocks.Count;
        float[] hessian = RandomHessian(16, 9);
        foreach (float[]? h in new[] { null, hessian })
        {
            byte[] scales = Run(false, values, DType.F32, rows, 16, globalAmax, h, NumericsData.Path(pathName));
            for (int b = 0; b < rows; b++)
            {
                float chosen = SearchReference.Loss(blocks[b], scales[b], weightScale2, h);
                for (int code = 1; code <= SearchReference.Candidates; code++)
                {
                    float loss = SearchReference.Loss(blocks[b], (byte)code, weightScale2, h);
                    Assert.True(code < scales[b] ? loss > chosen : loss >= chosen,
                        $"H={h != null} block {b}: chose 0x{scales[b]:X2} (loss {chosen}), candidate 0x{code:X2} has loss {loss}");
                }
            }

            Assert.Equal(0x01, scales[0]);
            Assert.Equal(0x7E, scales[3]);
            Assert.Equal(0x01, scales[4]);
            if (h == null)
            {
                // 3·D(0x40) is exact at 0x40 (code 3), and at the smaller scale 0x38 (6·D(0x38) = 3·D(0x40)); 0x38 comes first.
                Assert.Equal(0x38, scales[2]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndTypes))]
    public void IdentityHessian_EqualsPlainMse(string pathName, DType dtype)
    {
        const int rows = 9, cols = 48;
        float[] values = NumericsData.WeightLike(rows, cols, 21);
        float amax = values.Max(v => MathF.Abs(NumericsData.RoundTo(v, dtype)));
        var identity = new float[cols / 16 * 256];
        for (int block = 0; block < cols / 16; block++)
        {
            for (int i = 0; i < 16; i++)
            {
                identity[block * 256 + i * 17] = 1f;
            }
        }

        KernelPath path = NumericsData.Path(pathName);
        Assert.Equal(Run(false, values, dtype, rows, cols, amax, null, path), Run(false, values, dtype, rows, cols, amax, identity, path));
    }

    /// <summary>A tiny global amax puts weight_scale_2 near the fp32 subnormals: the 8-division shortcut is off and results still match.</summary>
    [Fact]
    public void TinyGlobalAmax_FallsBackExactly()
    {
        const int rows = 2, cols = 32;
        float[] values = NumericsData.WeightLike(rows, cols, 4).Select(v => v * 1e-33f).ToArray();
        float amax = values.Max(MathF.Abs);
        Assert.False(new SweepTables(GlobalScale.ForWeight(amax)).PowerOfTwoExact);
        foreach (KernelPath path in KernelPaths.Available())
        {
            AssertMatchesReference(false, values, DType.F32, rows, cols, amax, null, path);
        }
    }

    [Fact]
    public void Multipliers_AreModelOptsLinspace()
    {
        Assert.Equal(39, MultiplierChooser.Multipliers.Length);
        Assert.Equal(SearchReference.Multipliers(), MultiplierChooser.Multipliers);
        Assert.Equal(0.25f, MultiplierChooser.Multipliers[0]);
        Assert.Equal(4f, MultiplierChooser.Multipliers[^1]);

        // And libtorch's own torch.linspace(0.25, 4.0, 39) in fp32, bit for bit.
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = torch.NewDisposeScope();
        float[] fromTorch = torch.linspace(0.25, 4.0, 39, torch.ScalarType.Float32).data<float>().ToArray();
        Assert.Equal(fromTorch.Select(BitConverter.SingleToUInt32Bits), MultiplierChooser.Multipliers.Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void BadInput_IsRefusedWithItsErrorId()
    {
        byte[] source = NumericsData.Encode(new float[32], DType.F32);
        var scales = new byte[2];
        Assert.Equal(NumericsErrorIds.InvalidGlobalAmax,
            Assert.Throws<ModelOptException>(() => Nvfp4Search.Fp8ScaleSweep("t", source, DType.F32, 1, 32, float.NaN, scales)).ErrorId);
        Assert.Equal(NumericsErrorIds.InvalidHessianBlocks,
            Assert.Throws<ModelOptException>(() => Nvfp4Search.Fp8ScaleSweep("t", source, DType.F32, 1, 32, 1f, scales, new float[256])).ErrorId);
        var nanHessian = new float[512];
        nanHessian[3] = float.NaN;
        Assert.Equal(NumericsErrorIds.InvalidHessianBlocks,
            Assert.Throws<ModelOptException>(() => Nvfp4Search.Fp8ScaleSweep("t", source, DType.F32, 1, 32, 1f, scales, nanHessian)).ErrorId);
        byte[] nan = NumericsData.Encode(Enumerable.Range(0, 32).Select(i => i == 7 ? float.NaN : 0f).ToArray(), DType.F32);
        Assert.Equal(NumericsErrorIds.NonFiniteWeight,
            Assert.Throws<ModelOptException>(() => Nvfp4Search.MultiplierSearch("t", nan, DType.F32, 1, 32, 1f, scales)).ErrorId);
        Assert.Equal(NumericsErrorIds.Nvfp4ShapeNotBlockAligned,
            Assert.Throws<ModelOptException>(() => Nvfp4Search.Fp8ScaleSweep("t", source, DType.F32, 2, 16 + 8, 1f, scales)).ErrorId);
    }
}
