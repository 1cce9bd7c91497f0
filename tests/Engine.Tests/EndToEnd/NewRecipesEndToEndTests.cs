using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Tests.Quantization;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.EndToEnd;

/// <summary>
/// Every family × every recipe that mixes formats or quantizes the KV cache, through the whole pipeline: plan, max
/// calibration, quality of the planned form, export, Test-QuantFormat's verifier against the source, and quality of the
/// export read back from disk — which must equal the planned form exactly, since both quantize with the same bytes.
/// </summary>
public sealed class NewRecipesEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private static readonly QualityOptions Quality = new() { Sequences = new SequenceOptions { NumSamples = 3, SequenceLength = 24, Seed = 9 } };
    private static readonly CalibrationOptions Calibration = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32 } };
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>The Qwen3.6-style mixed preset (both KV modes) on every family; the experts-only preset on the MoE families.</summary>
    public static TheoryData<string, string, KvCacheMode> Cases()
    {
        var cases = new TheoryData<string, string, KvCacheMode>();
        foreach (var family in FamilyModels.All)
        {
            cases.Add(family, "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST", KvCacheMode.Fp8Cast);
            cases.Add(family, "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST", KvCacheMode.Fp8Scaled);
            if (family is "qwen3_moe" or "mixtral" or "qwen3_next" or "qwen3_5_moe")
                cases.Add(family, "NVFP4_EXPERTS_ONLY_KV_FP8_CAST", KvCacheMode.Fp8Cast);
        }
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportsVerifiesAndMeasures(string family, string preset, KvCacheMode kvCache)
    {
        string source = family == DenseQwen3_5.Family
            ? DenseQwen3_5.Recipe().Write(_tmp.Combine("source"))
            : TinyCheckpoints.Write(family, _tmp.Combine("source"));
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset).WithKvCache(kvCache));
        Assert.True(model.Plan.NeedsCalibration);
        model.Statistics = Calibrator.Run(model, Calibration).Statistics;

        var planned = QualityMeasurer.MeasurePlanned(model, Quality);
        var export = CheckpointExporter.Export(model, _tmp.Combine("export"), new ExportOptions());
        var report = QuantFormatVerifier.Verify(export.Path, source);
        var readBack = QualityMeasurer.MeasureExport(model, export.Path, Quality);
        output.WriteLine($"{family} {preset} {kvCache}: {export.QuantAlgo}, KV {export.KvCacheQuantAlgo}\n{report}\n{planned}\n{readBack}");

        Assert.Equal(model.Plan.QuantAlgo, export.QuantAlgo);
        Assert.Equal("FP8", export.KvCacheQuantAlgo);
        Assert.True(report.Passed, string.Join("\n", report.Failures.Select(f => f.ToString())));
        Assert.Equal(export.QuantAlgo, report.QuantAlgo);
        Assert.Equal("FP8", report.KvCacheQuantAlgo);
        Assert.Equal(planned.Scheme, readBack.Scheme);
        Assert.Equal(planned.QuantizedPerplexity, readBack.QuantizedPerplexity);
        Assert.Equal(planned.MeanKl, readBack.MeanKl);
        Assert.Equal(planned.Top1Agreement, readBack.Top1Agreement);
        Assert.True(planned.MeanKl > 0 && double.IsFinite(planned.QuantizedPerplexity), planned.ToString());

        // Scaled mode writes k/v scales for every attention block with a KV cache; cast mode writes none.
        var names = ExportedTensorNames(export.Path);
        var scales = names.Where(n => n.EndsWith(".k_scale", StringComparison.Ordinal) || n.EndsWith(".v_scale", StringComparison.Ordinal)).Order().ToList();
        var expected = kvCache == KvCacheMode.Fp8Scaled
            ? model.Plan.KvCache.QuantizedLayers.SelectMany(l => new[] { l.KeyScaleName, l.ValueScaleName }).Order().ToList()
            : [];
        Assert.Equal(expected, scales);
        Assert.NotEmpty(model.Plan.KvCache.QuantizedLayers);
    }

    private static HashSet<string> ExportedTensorNames(string folder)
    {
        using var checkpoint = ModelOptPS.Engine.Checkpoint.CheckpointReader.Open(folder);
        return checkpoint.Tensors.Keys.ToHashSet(StringComparer.Ordinal);
    }
}
