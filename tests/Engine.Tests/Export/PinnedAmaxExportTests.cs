using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// An activation quantizer pinned by the recipe (<c>constant_amax</c>, or <c>use_constant_amax</c>) takes its scale from
/// that amax instead of calibration, as in ModelOpt: no calibration is needed for it, and measured statistics are ignored.
/// </summary>
public class PinnedAmaxExportTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static Func<QuantRecipe, QuantRecipe> Pin(string pattern, QuantizerFormat format, float amax) => r =>
        QuantRecipe.Build(r.Name, r.Entries.Append(new RecipeEntry
        {
            Position = 0, Pattern = pattern, Format = format with { ConstantAmax = amax }, Source = "test",
        }));

    /// <summary>ModelOpt's input_scale1 recipes: NVFP4 inputs pinned to 2688 = 6 × 448 give input_scale 1.0 exactly.</summary>
    [Theory]
    [InlineData(GlobalScaleOrder.Cuda)]
    [InlineData(GlobalScaleOrder.Cpu)]
    public void Nvfp4InputsPinnedTo2688HaveInputScaleOneWithoutCalibration(GlobalScaleOrder order)
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe", adjust: Pin("*input_quantizer", QuantizerFormat.Nvfp4, 2688f));
        Assert.False(model.Plan!.NeedsCalibration);
        Assert.Null(model.Statistics);
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp, order: order).Path);
        var inputScales = output.Tensors.Keys.Where(k => k.EndsWith(".input_scale", StringComparison.Ordinal)).ToList();
        Assert.Equal(model.Plan.Modules.Count(m => m.Decision == QuantDecision.Nvfp4), inputScales.Count); // experts are Linears here
        Assert.All(inputScales, name => Assert.Equal(1f, ExportedTensors.Scalar(output, name)));
    }

    [Fact]
    public void PinnedAmaxWinsOverCalibrationStatistics()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST",
            adjust: Pin("*self_attn.q_proj.input_quantizer", QuantizerFormat.Fp8, 224f));
        Assert.True(model.Plan!.NeedsCalibration); // k/v/o still are calibrated
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.input_quantizer", model.Plan.CalibratedQuantizers);
        model.Statistics = ExportFixture.Statistics(model);
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        Assert.Equal(0.5f, ExportedTensors.Scalar(output, "model.layers.0.self_attn.q_proj.input_scale"));
        Assert.Equal(Fp8.ActivationScale(model.Statistics.InputAmax["model.layers.0.self_attn.k_proj.input_quantizer"], "k"),
            ExportedTensors.Scalar(output, "model.layers.0.self_attn.k_proj.input_scale"));
    }

    [Fact]
    public void ScaledKvCachePinnedNeedsNoCalibration()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3", "W4A16_NVFP4", adjust: Pin(Presets.KvCachePattern, QuantizerFormat.Fp8, 112f));
        Assert.Equal(KvCacheMode.Fp8Scaled, model.Plan!.KvCache.Mode);
        Assert.False(model.Plan.NeedsCalibration);
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        for (int l = 0; l < model.Config.LayerCount; l++)
        {
            Assert.Equal(0.25f, ExportedTensors.Scalar(output, $"model.layers.{l}.self_attn.k_proj.k_scale"));
            Assert.Equal(0.25f, ExportedTensors.Scalar(output, $"model.layers.{l}.self_attn.v_proj.v_scale"));
        }
    }
}
