using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>Imports a generated family, plans it with a preset, attaches synthetic statistics, exports it.</summary>
internal static class ExportFixture
{
    public static HFModel Planned(TempFolder tmp, string family, string preset = "NVFP4_DEFAULT", IEnumerable<string>? exclude = null,
        long maxShardBytes = 10_000_000_000)
    {
        string source = tmp.Combine("src-" + family + "-" + Guid.NewGuid().ToString("N")[..6]);
        TinyCheckpoints.Write(family, source, maxShardBytes: maxShardBytes);
        var model = ModelImporter.Import(source);
        var recipe = Presets.Get(preset).WithModulePatterns([], exclude ?? [], QuantizerFormat.Nvfp4, Presets.IsWeightOnly(preset));
        model.Plan = QuantPlanner.Plan(model, recipe);
        if (model.Plan.NeedsCalibration) model.Statistics = SyntheticStatistics.For(model);
        return model;
    }

    public static ExportResult Export(HFModel model, TempFolder tmp, ExportFormat format = ExportFormat.ModelOpt, long maxShardBytes = 10_000_000_000) =>
        CheckpointExporter.Export(model, tmp.Combine("out-" + Guid.NewGuid().ToString("N")[..6]),
            new ExportOptions { Format = format, MaxShardBytes = maxShardBytes });
}
