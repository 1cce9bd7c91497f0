using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.EndToEnd;

/// <summary>
/// Every weight algorithm on a dense and an MoE family, weight-only and W4A4: the plan shows the algorithm, the export
/// passes Test-QuantFormat's verifier against the source, and quality read back from disk equals the planned form
/// exactly (both quantize the weights in <see cref="WeightQuantization"/>). Data-dependent algorithms without their data
/// are refused before anything is written.
/// </summary>
public sealed class WeightAlgorithmEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private static readonly QualityOptions Quality = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 24, Seed = 9 } };
    private static readonly CalibrationOptions Calibration = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32 } };
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string, string, WeightAlgorithm> Cases()
    {
        var cases = new TheoryData<string, string, WeightAlgorithm>();
        foreach (var family in new[] { "llama", "qwen3_5_moe" })
            foreach (var preset in new[] { "W4A16_NVFP4", "NVFP4_DEFAULT" })
                foreach (var algorithm in Enum.GetValues<WeightAlgorithm>())
                    cases.Add(family, preset, algorithm);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportsVerifiesAndMeasures(string family, string preset, WeightAlgorithm algorithm)
    {
        string source = TinyCheckpoints.Write(family, _tmp.Combine("source"));
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset).WithAlgorithm(new QuantAlgorithm(algorithm)));
        Assert.All(model.Plan.Modules.Where(m => m.IsQuantized), m => Assert.Equal(algorithm, m.Algorithm));
        Assert.Equal(preset == "NVFP4_DEFAULT" || algorithm.NeedsData(), model.Plan.NeedsCalibration);
        if (model.Plan.NeedsCalibration)
            model.Statistics = Calibrator.Run(model, Calibration with { CollectHessians = algorithm == WeightAlgorithm.LocalHessian }).Statistics;
        model.WeightSolutions = WeightCalibration.Run(model, Calibration);
        Assert.Equal(algorithm == WeightAlgorithm.Gptq, model.WeightSolutions is not null);

        var planned = QualityMeasurer.MeasurePlanned(model, Quality);
        var export = CheckpointExporter.Export(model, _tmp.Combine("export"), new ExportOptions());
        var report = QuantFormatVerifier.Verify(export.Path, source);
        var readBack = QualityMeasurer.MeasureExport(model, export.Path, Quality);
        output.WriteLine($"{family} {preset} {algorithm}: {export.QuantAlgo}\n{report}\n{planned}\n{readBack}");

        Assert.True(report.Passed, string.Join("\n", report.Failures.Select(f => f.ToString())));
        Assert.Equal(planned.QuantizedPerplexity, readBack.QuantizedPerplexity);
        Assert.Equal(planned.MeanKl, readBack.MeanKl);
        Assert.Equal(planned.Top1Agreement, readBack.Top1Agreement);
        Assert.True(planned.MeanKl > 0 && double.IsFinite(planned.QuantizedPerplexity), planned.ToString());
        // GPTQ's codes round updated weights: the verifier accepts them by its GPTQ allowance, not the per-value bound.
        Assert.Equal(algorithm == WeightAlgorithm.Gptq, report.Checks.Any(c => c.Reason.Contains("as GPTQ's are", StringComparison.Ordinal)));
        if (algorithm != WeightAlgorithm.Max) Assert.NotEqual(Scales(export.Path), Scales(MaxExport(source, preset)));
    }

    [Theory]
    [InlineData("llama", WeightAlgorithm.LocalHessian)]
    [InlineData("llama", WeightAlgorithm.Gptq)]
    [InlineData("qwen3_5_moe", WeightAlgorithm.LocalHessian)]
    public void DataDependentAlgorithmWithoutDataIsRefused(string family, WeightAlgorithm algorithm)
    {
        string source = TinyCheckpoints.Write(family, _tmp.Combine("source"));
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4").WithAlgorithm(new QuantAlgorithm(algorithm)));
        string target = _tmp.Combine("export");

        var none = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions()));
        Assert.Equal("CalibrationRequired", none.ErrorId);
        Assert.Contains(algorithm.ToString(), none.Message);
        Assert.False(Directory.Exists(target));
        Assert.Equal(WeightQuantization.WeightCalibrationMissing,
            Assert.Throws<ModelOptException>(() => QualityMeasurer.MeasurePlanned(model, Quality)).ErrorId);

        // Statistics collected for another algorithm (no Hessian blocks, no GPTQ solutions) are refused too.
        model.Statistics = Calibrator.Run(model, Calibration).Statistics;
        var other = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions()));
        Assert.Equal(WeightQuantization.WeightCalibrationMissing, other.ErrorId);
        Assert.Equal(ErrorKind.InvalidOperation, other.Kind);
        Assert.Equal(model.Path, other.Path);
        Assert.False(Directory.Exists(target));
    }

    /// <summary>Swapped nibbles in one weight fail the bound whatever the algorithm, GPTQ's allowance included.</summary>
    [Theory]
    [InlineData(WeightAlgorithm.Max)]
    [InlineData(WeightAlgorithm.MseFp8Sweep)]
    [InlineData(WeightAlgorithm.LocalHessian)]
    [InlineData(WeightAlgorithm.Gptq)]
    public void CorruptedWeightStillFails(WeightAlgorithm algorithm)
    {
        string source = TinyCheckpoints.Write("llama", _tmp.Combine("source"));
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4").WithAlgorithm(new QuantAlgorithm(algorithm)));
        if (algorithm == WeightAlgorithm.LocalHessian) model.Statistics = Calibrator.Run(model, Calibration with { CollectHessians = true }).Statistics;
        model.WeightSolutions = WeightCalibration.Run(model, Calibration);
        var export = CheckpointExporter.Export(model, _tmp.Combine("export"), new ExportOptions());
        Assert.True(QuantFormatVerifier.Verify(export.Path, source).Passed);

        const string Module = "model.layers.0.mlp.down_proj";
        new ModelOptPS.Engine.Tests.Verification.CheckpointEditor(export.Path).Tensor(Module + ".weight", t =>
        {
            var data = t.Data.ToArray();
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(data[i] << 4 | data[i] >> 4);
            return t with { Data = data };
        });
        var report = QuantFormatVerifier.Verify(export.Path, source);
        output.WriteLine(report.ToString());
        Assert.Contains(report.Failures, f => f.Name == Module);
    }

    /// <summary>
    /// One code moved by one E2M1 step in a Max export keeps every block at its max scale and the error energy tiny, so
    /// it looks like GPTQ's re-rounding; the export's manifest says Max, so it fails. Without the manifest (a checkpoint
    /// from another producer) the same bytes pass as GPTQ-like, which is what the allowance is for.
    /// </summary>
    [Fact]
    public void OneMovedCodeFailsUnlessTheExportSaysGptq()
    {
        string source = TinyCheckpoints.Write("llama", _tmp.Combine("source"));
        string export = MaxExport(source, "W4A16_NVFP4");
        Assert.Equal("Max", ModelOptPS.Engine.Export.ExportManifest.TryRead(export)!.WeightAlgorithm);
        const string Module = "model.layers.0.mlp.down_proj";
        new ModelOptPS.Engine.Tests.Verification.CheckpointEditor(export).Tensor(Module + ".weight", t =>
        {
            var data = t.Data.ToArray();
            int i = Array.FindIndex(data, b => (b & 0x7) is > 0 and < 6);
            data[i] = (byte)(data[i] + 1); // low nibble one E2M1 step larger in magnitude, sign kept
            return t with { Data = data };
        });
        var report = QuantFormatVerifier.Verify(export, source);
        output.WriteLine(report.ToString());
        Assert.Contains(report.Failures, f => f.Name == Module);

        File.Delete(Path.Combine(export, ModelOptPS.Engine.Export.ExportManifest.FileName));
        Assert.DoesNotContain(QuantFormatVerifier.Verify(export, source).Failures, f => f.Name == Module);
    }

    private string MaxExport(string source, string preset)
    {
        string target = _tmp.Combine("max-export");
        if (Directory.Exists(target)) return target;
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        if (model.Plan.NeedsCalibration) model.Statistics = Calibrator.Run(model, Calibration).Statistics;
        return CheckpointExporter.Export(model, target, new ExportOptions()).Path;
    }

    /// <summary>Every block-scale and packed byte of an export, in name order.</summary>
    private static byte[] Scales(string folder)
    {
        using var checkpoint = ModelOptPS.Engine.Checkpoint.CheckpointReader.Open(folder);
        var bytes = new List<byte>();
        foreach (var name in checkpoint.Tensors.Keys.Where(n => n.EndsWith(".weight_scale", StringComparison.Ordinal) || checkpoint.GetTensor(n).Info.DType == DType.U8).Order(StringComparer.Ordinal))
        {
            var t = checkpoint.GetTensor(name);
            using var data = t.File.Read(t.Info);
            bytes.AddRange(data.Span.ToArray());
        }
        return [.. bytes];
    }
}
