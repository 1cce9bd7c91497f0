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
        Assert.Equal(preset == "W4A16_NVFP4" ? "W4A16_NVFP4" : "NVFP4", planned.Scheme);
        Assert.Equal(planned.ReferencePerplexity, readBack.ReferencePerplexity);
        // compressed-tensors stores reciprocal global scales, so its read-back may differ in the last bits.
        double tolerance = format == ExportFormat.ModelOpt ? 0 : 1e-6;
        Assert.Equal(planned.QuantizedPerplexity, readBack.QuantizedPerplexity, tolerance);
        Assert.Equal(planned.MeanKl, readBack.MeanKl, tolerance);
        Assert.Equal(3 * 23, planned.Positions);
        Assert.True(planned.MeanKl > 0, "quantization changed nothing: the quantized form was not applied");
        // Top-1 agreement is a count of positions: a whole number of them, and the read-back agrees on the same ones.
        double agreeing = planned.Top1Agreement * planned.Positions;
        Assert.Equal(Math.Round(agreeing), agreeing, 1e-9);
        if (format == ExportFormat.ModelOpt) Assert.Equal(planned.Top1Agreement, readBack.Top1Agreement);
        Assert.Contains("held-out", planned.Data);
    }

    [Fact]
    public void NextTokenMetricsMatchAHandComputation()
    {
        // Two predicted positions over a vocabulary of 3, computed here in plain doubles.
        long[] tokens = [0, 2, 1];
        double[][] reference = [[1, 0, 2], [0, 3, 1], [9, 9, 9]];
        double[][] quantized = [[2, 0, 1], [0, 2, 1], [9, 9, 9]];
        static double[] LogSoftmax(double[] x)
        {
            double log = Math.Log(x.Sum(Math.Exp));
            return x.Select(v => v - log).ToArray();
        }
        double referenceNll = 0, quantizedNll = 0, kl = 0;
        int agree = 0;
        for (int t = 0; t < 2; t++)
        {
            var p = LogSoftmax(reference[t]);
            var q = LogSoftmax(quantized[t]);
            referenceNll -= p[tokens[t + 1]];
            quantizedNll -= q[tokens[t + 1]];
            kl += p.Select((lp, v) => Math.Exp(lp) * (lp - q[v])).Sum();
            agree += Array.IndexOf(p, p.Max()) == Array.IndexOf(q, q.Max()) ? 1 : 0;
        }
        var metrics = new NextTokenMetrics();
        using (var r = TorchSharp.torch.tensor(reference.SelectMany(x => x).Select(v => (float)v).ToArray(), [3, 3]))
        using (var q = TorchSharp.torch.tensor(quantized.SelectMany(x => x).Select(v => (float)v).ToArray(), [3, 3]))
            metrics.Add(tokens, r, q);
        Assert.Equal(2, metrics.Positions);
        Assert.Equal(Math.Exp(referenceNll / 2), metrics.ReferencePerplexity, 1e-12);
        Assert.Equal(Math.Exp(quantizedNll / 2), metrics.QuantizedPerplexity, 1e-12);
        Assert.Equal(kl / 2, metrics.MeanKl, 1e-12);
        Assert.Equal(0.5, metrics.Top1Agreement); // position 0 disagrees (2 vs 0), position 1 agrees (1)
        Assert.Equal(agree / 2.0, metrics.Top1Agreement);
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
