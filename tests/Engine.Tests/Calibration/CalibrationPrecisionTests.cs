using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Tests.Execution;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>Calibration in BFloat16 (<see cref="CalibrationOptions.ComputeDType"/>) against Float32 on the same data.</summary>
public sealed class CalibrationPrecisionTests : IDisposable
{
    private static readonly CalibrationOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32, Seed = 5 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Planned(string family)
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family)));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT").WithKvCache(KvCacheMode.Fp8Scaled));
        return model;
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen3_5_moe")]
    [InlineData("qwen3_next")]
    public void BFloat16Amaxes_StayCloseToFloat32_AndAreBFloat16Values(string family)
    {
        using var model = Planned(family);
        var (fp32, fp32Report) = Calibrator.Run(model, Small with { CollectHessians = true });
        var (bf16, bf16Report) = Calibrator.Run(model, Small with { CollectHessians = true, ComputeDType = ComputeDType.BFloat16 });

        Assert.Equal(ComputeDType.Float32, fp32Report.ComputeDType);
        Assert.Equal(ComputeDType.BFloat16, bf16Report.ComputeDType);
        Assert.Contains("(BFloat16)", bf16Report.ToString(), StringComparison.Ordinal);
        Assert.Equal(fp32.InputAmax.Keys.Order(), bf16.InputAmax.Keys.Order());
        Assert.Contains(model.Plan!.KvCache.CalibratedQuantizers, q => bf16.InputAmax.ContainsKey(q.Name));
        foreach (var (name, amax) in fp32.InputAmax)
        {
            float other = bf16.InputAmax[name];
            // The observed tensors are bf16, so every max |x| is a bf16 number; Float32's are almost never all are.
            Assert.Equal(other, BFloat16(other));
            // bf16 rounds every activation to 8 significant bits (2^-8 relative) and that rounding compounds over a
            // few random layers; measured on these fixtures below 2%, the bound leaves room for other seeds.
            Assert.True(Math.Abs(other - amax) <= 0.05 * amax, $"{name}: bf16 {other} vs fp32 {amax}");
        }
        Assert.Contains(fp32.InputAmax.Values, a => a != BFloat16(a));

        // The Hessian blocks are accumulated in float32 from the bf16 inputs.
        Assert.Equal(fp32.HessianBlocks.Keys.Order(), bf16.HessianBlocks.Keys.Order());
        foreach (var (unit, blocks) in fp32.HessianBlocks)
        {
            var other = bf16.HessianBlocks[unit];
            Assert.Equal(blocks.Tokens, other.Tokens);
            double scale = blocks.Blocks.Max(Math.Abs);
            Assert.All(blocks.Blocks.Zip(other.Blocks), p => Assert.True(Math.Abs(p.First - p.Second) <= 0.05 * scale, $"{unit}: {p.Second} vs {p.First}"));
        }
    }

    [Fact]
    public void BFloat16Run_ShowsTheObserverBFloat16Tensors()
    {
        using var model = Planned("qwen3_5_moe");
        var observer = new RecordingObserver();
        using (var runner = ModelRunner.Create(model, new RunnerOptions { ComputeDType = ComputeDType.BFloat16 }))
            runner.RunLayerwise([[5, 9, 200, 31, 7, 8], [250, 1, 64]], observer);
        Assert.Equal([ScalarType.BFloat16], observer.DTypes);
        Assert.Contains(observer.Inputs.Keys, k => k.EndsWith("k_bmm_quantizer", StringComparison.Ordinal));
    }

    private static float BFloat16(float value)
    {
        using var t = tensor(value).to(ScalarType.BFloat16).to(ScalarType.Float32);
        return t.item<float>();
    }
}
