using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>Imports a generated family, plans it with a preset, attaches synthetic statistics, exports it.</summary>
internal static class ExportFixture
{
    /// <param name="adjust">Changes the preset's recipe before planning (a KV-cache mode, a pinned amax…).</param>
    public static HFModel Planned(TempFolder tmp, string family, string preset = "NVFP4_DEFAULT", IEnumerable<string>? exclude = null,
        long maxShardBytes = 10_000_000_000, Func<QuantRecipe, QuantRecipe>? adjust = null)
    {
        string source = tmp.Combine("src-" + family + "-" + Guid.NewGuid().ToString("N")[..6]);
        if (family == DenseQwen3_5.Family)
            DenseQwen3_5.Recipe().Write(source, seed: 1234, maxShardBytes: maxShardBytes);
        else
            TinyCheckpoints.Write(family, source, maxShardBytes: maxShardBytes);
        var model = ModelImporter.Import(source);
        var recipe = Presets.Get(preset).WithModulePatterns([], exclude ?? [], QuantizerFormat.Nvfp4, Presets.IsWeightOnly(preset));
        model.Plan = QuantPlanner.Plan(model, adjust is null ? recipe : adjust(recipe));
        if (model.Plan.NeedsCalibration) model.Statistics = Statistics(model);
        return model;
    }

    /// <summary>
    /// Synthetic input amax for every Linear input quantizer, and for every KV-cache quantizer of the plan (calibration
    /// records those under <c>&lt;attn&gt;.k_bmm_quantizer</c> / <c>v_bmm_quantizer</c>): distinct, positive, deterministic.
    /// </summary>
    public static CalibrationStatistics Statistics(HFModel model)
    {
        var amax = SyntheticStatistics.For(model).InputAmax.ToDictionary(StringComparer.Ordinal);
        int i = 0;
        foreach (var layer in model.RequirePlan().KvCache.Layers)
        {
            amax[layer.Key.Name] = 3.25f + 0.75f * i++;
            amax[layer.Value.Name] = 1.125f + 0.5f * i;
        }
        return new CalibrationStatistics(amax, source: "synthetic (tests)");
    }

    public static ExportResult Export(HFModel model, TempFolder tmp, ExportFormat format = ExportFormat.ModelOpt, long maxShardBytes = 10_000_000_000,
        GlobalScaleOrder order = GlobalScaleOrder.Cuda) =>
        CheckpointExporter.Export(model, tmp.Combine("out-" + Guid.NewGuid().ToString("N")[..6]),
            new ExportOptions { Format = format, MaxShardBytes = maxShardBytes, Order = order });
}
