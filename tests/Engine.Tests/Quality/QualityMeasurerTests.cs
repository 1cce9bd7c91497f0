using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quality;

public class QualityMeasurerTests : IDisposable
{
    private static readonly QualityOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 3, SequenceLength = 24, Seed = 9 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Calibrated(string family, string preset)
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        if (model.Plan.NeedsCalibration)
            model.Statistics = Calibrator.Run(model, new CalibrationOptions { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32 } }).Statistics;
        return model;
    }

    [Theory]
    [InlineData("qwen3_moe", "NVFP4_DEFAULT", ExportFormat.ModelOpt)]
    [InlineData("qwen3_5_moe", "NVFP4_DEFAULT", ExportFormat.ModelOpt)]
    [InlineData("mixtral", "W4A16_NVFP4", ExportFormat.ModelOpt)]
    [InlineData("qwen3_next", "NVFP4_MLP_ONLY", ExportFormat.CompressedTensors)]
    public void TheExportReadBackComputesWhatThePlanDefines(string family, string preset, ExportFormat format)
    {
        using var model = Calibrated(family, preset);
        var planned = QualityMeasurer.MeasurePlanned(model, Small);
        var export = CheckpointExporter.Export(model, _tmp.Combine("out-" + family), new ExportOptions { Format = format });
        var readBack = QualityMeasurer.MeasureExport(model, export.Path, Small);
        Assert.Equal(planned.Scheme, readBack.Scheme);
        Assert.Equal(preset == "W4A16_NVFP4" ? "W4A16" : "W4A4", planned.Scheme);
        Assert.Equal(planned.ReferencePerplexity, readBack.ReferencePerplexity);
        // compressed-tensors stores reciprocal global scales, so its read-back may differ in the last bits.
        double tolerance = format == ExportFormat.ModelOpt ? 0 : 1e-6;
        Assert.Equal(planned.QuantizedPerplexity, readBack.QuantizedPerplexity, tolerance);
        Assert.Equal(planned.MeanKl, readBack.MeanKl, tolerance);
        Assert.Equal(3 * 23, planned.Positions);
        Assert.True(planned.MeanKl > 0, "quantization changed nothing: the quantized form was not applied");
        Assert.InRange(planned.Top1Agreement, 0, 1);
        Assert.Contains("held-out", planned.Data);
    }

    [Fact]
    public void AnEmptyPlanMeasuresNoDifference()
    {
        using var model = ModelImporter.Import(TinyCheckpoints.Write("llama", _tmp.Combine("llama")));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_EXPERTS_ONLY"), allowEmpty: true);
        var report = QualityMeasurer.MeasurePlanned(model, Small);
        Assert.Equal(report.ReferencePerplexity, report.QuantizedPerplexity);
        Assert.Equal(0, report.MeanKl, 1e-12);
        Assert.Equal(1.0, report.Top1Agreement);
    }

    [Fact]
    public void ActivationQuantizationAddsErrorOnTopOfWeights()
    {
        using var w4a4 = Calibrated("qwen3", "NVFP4_DEFAULT");
        var both = QualityMeasurer.MeasurePlanned(w4a4, Small);
        w4a4.Plan = QuantPlanner.Plan(w4a4, Presets.Get("W4A16_NVFP4"));
        var weightsOnly = QualityMeasurer.MeasurePlanned(w4a4, Small);
        Assert.True(both.MeanKl > weightsOnly.MeanKl, $"W4A4 KL {both.MeanKl} vs W4A16 KL {weightsOnly.MeanKl}");
    }
}
