using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.GcStress;

/// <summary>
/// One family's torch paths on its tiny checkpoint: a forward pass (ModelRunner), calibration (Calibrator, as
/// Invoke-Calibration runs it) and quality measurement (QualityMeasurer, as Measure-QuantQuality runs it) of the planned
/// and the exported NVFP4 forms, and of a planned FP8 + NVFP4 mix with a calibrated FP8 KV cache. Each run returns a fingerprint of its results; every path is deterministic, so a run
/// whose fingerprint differs from the first computed something wrong (e.g. read a freed Scalar that held other bits).
/// </summary>
internal sealed class FamilyPaths : IDisposable
{
    private static readonly long[] Tokens = [3, 141, 59, 26, 255, 0, 97, 97];
    // With Hessian blocks, so every torch path of calibration runs.
    private static readonly CalibrationOptions Calibration = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 32, Seed = 5 }, CollectHessians = true };
    private static readonly QualityOptions Quality = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 24, Seed = 9 } };

    private readonly HFModel _model;
    private readonly HFModel _mixed;
    private readonly string _export;

    private FamilyPaths(string family, HFModel model, HFModel mixed, string export)
    {
        Family = family;
        _model = model;
        _mixed = mixed;
        _export = export;
    }

    public string Family { get; }

    /// <summary>Writes, imports, plans (NVFP4_DEFAULT: W4A4), calibrates and exports the family under <paramref name="root"/>.</summary>
    public static FamilyPaths Prepare(string family, string root)
    {
        var model = ModelImporter.Import(ForwardFamilies.Write(family, Path.Combine(root, family)));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT"));
        model.Statistics = Calibrator.Run(model, Calibration).Statistics;
        string export = CheckpointExporter.Export(model, Path.Combine(root, family + "-nvfp4"), new ExportOptions()).Path;
        // Calibration measures every Linear input and KV cache whatever the plan, so the same statistics serve the mix.
        var mixed = ModelImporter.Import(model.Path);
        mixed.Plan = QuantPlanner.Plan(mixed, Presets.Get("W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST").WithKvCache(KvCacheMode.Fp8Scaled));
        mixed.Statistics = model.Statistics;
        return new FamilyPaths(family, model, mixed, export);
    }

    /// <summary>Runs every path once; the fingerprint names each path's result.</summary>
    public IReadOnlyList<(string Path, string Result)> Run() =>
    [
        ("forward", Forward()),
        ("calibration", Calibrate()),
        ("planned quality", Describe(QualityMeasurer.MeasurePlanned(_model, Quality))),
        ("exported quality", Describe(QualityMeasurer.MeasureExport(_model, _export, Quality))),
        ("planned FP8 mix and KV cache quality", Describe(QualityMeasurer.MeasurePlanned(_mixed, Quality))),
    ];

    private string Forward()
    {
        using var runner = ModelRunner.Create(_model);
        using var logits = runner.Forward(Tokens);
        using var scope = NewDisposeScope();
        float[] values = logits.to(ScalarType.Float32).data<float>().ToArray();
        return Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    private string Calibrate()
    {
        var (statistics, _) = Calibrator.Run(_model, Calibration);
        return string.Join(",", statistics.InputAmax.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Value.ToString("R", CultureInfo.InvariantCulture)));
    }

    private static string Describe(QualityReport r) => string.Join(",", new[] { r.ReferencePerplexity, r.QuantizedPerplexity, r.MeanKl, r.Top1Agreement }
        .Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    public void Dispose()
    {
        _mixed.Dispose();
        _model.Dispose();
    }
}
