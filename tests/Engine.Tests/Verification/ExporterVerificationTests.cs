using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// The product's exporter against the independent verifier: every generated family under every preset, in both
/// formats, must pass Test-QuantFormat with -Reference (issue 5, "Done when").
/// </summary>
public sealed class ExporterVerificationTests(ITestOutputHelper output)
{
    /// <summary>Dense families have no experts, so the NVFP4_EXPERTS_ONLY presets quantize nothing and the planner refuses them.</summary>
    private static readonly string[] DenseFamilies = ["llama", "qwen2", "qwen3"];

    public static TheoryData<string, string, ExportFormat> Matrix()
    {
        var data = new TheoryData<string, string, ExportFormat>();
        foreach (var family in TinyCheckpoints.Families)
            foreach (var preset in Presets.Names.Where(p => !p.StartsWith("NVFP4_EXPERTS_ONLY", StringComparison.Ordinal) || !DenseFamilies.Contains(family)))
                foreach (var format in Enum.GetValues<ExportFormat>().Where(f => f == ExportFormat.ModelOpt || !UsesFp8(preset)))
                    data.Add(family, preset, format);
        return data;
    }

    /// <summary>FP8 modules or KV cache: compressed-tensors refuses those plans (ExportLayoutTests checks the refusal).</summary>
    private static bool UsesFp8(string preset) => Presets.Get(preset).Entries.Any(e => e.Enables && e.Format is { IsFp8PerTensor: true });

    [Theory]
    [MemberData(nameof(Matrix))]
    public void ExportPassesWithReference(string family, string preset, ExportFormat format)
    {
        using var tmp = new TempFolder();
        string source = Export(tmp, family, preset, new ExportOptions { Format = format, MaxShardBytes = 150_000 });

        var report = QuantFormatVerifier.Verify(tmp.Combine("export"), source);

        foreach (var failure in report.Checks.Where(c => c.Status != CheckStatus.Pass)) output.WriteLine(failure.ToString());
        Assert.True(report.Passed, report.Summary);
        Assert.Equal(format == ExportFormat.ModelOpt ? QuantFormat.ModelOpt : QuantFormat.CompressedTensors, report.Format);
        using (var model = ModelImporter.Import(source))
        {
            var plan = QuantPlanner.Plan(model, Presets.Get(preset)); // what the export declares: one algo, or MIXED_PRECISION; the KV cache
            Assert.Equal(plan.QuantAlgo, report.QuantAlgo);
            Assert.Equal(plan.KvCache.QuantAlgo, report.KvCacheQuantAlgo);
        }
        Assert.True(report.QuantizedModules > 0);
        Assert.All(report.Checks.Where(c => c.Found.StartsWith("NVFP4", StringComparison.Ordinal) || c.Found.StartsWith("FP8", StringComparison.Ordinal)),
            c => Assert.NotNull(c.SqnrDb));
    }

    [Fact]
    public void CpuScaleOrderPasses()
    {
        using var tmp = new TempFolder();
        string source = Export(tmp, "mixtral", Presets.Default, new ExportOptions { Order = GlobalScaleOrder.Cpu });

        Assert.True(QuantFormatVerifier.Verify(tmp.Combine("export"), source).Passed);
    }

    private static string Export(TempFolder tmp, string family, string preset, ExportOptions options)
    {
        string source = TinyCheckpoints.Write(family, tmp.Combine("source"), maxShardBytes: 150_000);
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        if (model.Plan.NeedsCalibration) model.Statistics = SyntheticStatistics.For(model);
        CheckpointExporter.Export(model, tmp.Combine("export"), options);
        return source;
    }
}
