using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Engine.Verification;
using static TorchSharp.torch;

namespace ModelOptPS.Bench;

/// <summary>
/// What the scale benchmark's child processes run, one stage (or one calibration and its export) per process so
/// that each stage's memory peak is its own. Each returns its measurements.
/// </summary>
internal static class ScaleStages
{
    /// <summary>Weight-only NVFP4 (no calibration) and W4A4 (calibrated activations) presets.</summary>
    public const string WeightOnlyPreset = "W4A16_NVFP4", CalibratedPreset = "NVFP4_DEFAULT";

    public const string MatmulPeakStage = "matmul peak";

    /// <summary>libtorch matmul of two random [n, n] matrices in fp32 and in bf16, all of libtorch's threads: the machine's matmul peak.</summary>
    public static ScaleStage[] MatmulPeak(int n, bool quick)
    {
        TorchRuntime.EnsureLoaded();
        return [ScaleStage.Measure(MatmulPeakStage, () =>
        {
            var details = new Dictionary<string, object?> { ["n"] = n, ["threads"] = get_num_threads() };
            foreach (var (name, type) in new[] { ("fp32", ScalarType.Float32), ("bf16", ScalarType.BFloat16) })
            {
                using var scope = NewDisposeScope();
                manual_seed(7);
                Tensor a = randn([n, n], type), b = randn([n, n], type);
                var timing = BenchContext.Measure(() => { using var product = matmul(a, b); }, warmup: 1, minRuns: 3, minSeconds: quick ? 0.5 : 3);
                details[$"{name}_seconds"] = timing.MedianSeconds;
                details[$"{name}_gflops"] = 2.0 * n * n * n / timing.MedianSeconds / 1e9;
            }
            return details;
        })];
    }

    /// <summary>Import-HFModel's engine: headers, config, module inventory.</summary>
    public static ScaleStage[] Import(string source) =>
    [ScaleStage.Measure("import", () =>
    {
        using var model = ModelImporter.Import(source);
        return new() { ["tensors"] = model.TensorCount, ["modules"] = model.Modules.Count, ["source_bytes"] = model.SizeOnDisk };
    })];

    /// <summary>Import, plan W4A16 and export, as <c>Import-HFModel | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4</c>.</summary>
    public static ScaleStage[] WeightOnlyExport(string source, string target, bool cold)
    {
        bool dropped = cold && PageCache.Drop(source);
        return [ScaleStage.Measure(cold ? "W4A16 export, cold" : "W4A16 export, warm", () =>
        {
            using var model = ModelImporter.Import(source);
            model.Plan = QuantPlanner.Plan(model, Presets.Get(WeightOnlyPreset));
            var result = CheckpointExporter.Export(model, target, new ExportOptions());
            return Exported(result, dropped);
        })];
    }

    /// <summary>A plain copy of the same files (File.Copy, then fsync each, as export syncs its shards).</summary>
    public static ScaleStage[] Copy(string source, string target, bool cold)
    {
        bool dropped = cold && PageCache.Drop(source);
        return [ScaleStage.Measure(cold ? "copy, cold" : "copy, warm", () =>
        {
            Directory.CreateDirectory(target);
            long bytes = 0;
            foreach (string file in Directory.EnumerateFiles(source))
            {
                string copy = Path.Combine(target, Path.GetFileName(file));
                File.Copy(file, copy);
                using var stream = new FileStream(copy, FileMode.Open, FileAccess.Write);
                stream.Flush(flushToDisk: true);
                bytes += stream.Length;
            }
            return new() { ["bytes"] = bytes, ["cache_dropped"] = dropped };
        })];
    }

    /// <summary>
    /// W4A4: import, plan NVFP4_DEFAULT and calibrate as <c>Invoke-Calibration -NumSamples n -SequenceLength s</c>
    /// (batch 16, the cmdlet's default) in <paramref name="computeDType"/>, with each decoder layer's time; then the W4A4 export, measured on its own.
    /// </summary>
    public static ScaleStage[] CalibrateAndExport(string source, string target, int samples, int sequenceLength, ComputeDType computeDType)
    {
        using var model = ModelImporter.Import(source);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(CalibratedPreset));
        var options = new CalibrationOptions
        {
            Sequences = new SequenceOptions { NumSamples = samples, SequenceLength = sequenceLength },
            TokensPerChunk = CalibrationOptions.TokensPerBatch(16, sequenceLength),
            ComputeDType = computeDType,
        };
        var layers = new LayerClock();
        var calibration = ScaleStage.Measure("W4A4 calibration", () =>
        {
            var (statistics, report) = Calibrator.Run(model, options, layers);
            model.Statistics = statistics;
            model.CalibrationReport = report;
            return new()
            {
                ["tokens"] = report.Tokens, ["samples"] = report.Samples, ["sequence_length"] = report.SequenceLength,
                ["calibrator_seconds"] = report.Duration.TotalSeconds, ["tokens_per_second"] = report.TokensPerSecond,
                ["quantizers_calibrated"] = report.QuantizersCalibrated, ["idle_experts"] = report.IdleExperts,
                ["warnings"] = report.Warnings, ["layer_seconds"] = layers.LayerSeconds(),
                ["torch_threads"] = get_num_threads(), ["compute_dtype"] = report.ComputeDType.ToString(),
            };
        });
        var export = ScaleStage.Measure("W4A4 export", () => Exported(CheckpointExporter.Export(model, target, new ExportOptions()), false));
        return [calibration, export];
    }

    /// <summary>Test-QuantFormat -Reference: the export's format and every quantized weight against the source.</summary>
    public static ScaleStage[] Verify(string export, string source) =>
    [ScaleStage.Measure("W4A4 verification", () =>
    {
        var report = QuantFormatVerifier.Verify(export, source);
        if (!report.Passed) throw new InvalidOperationException($"Verification of the W4A4 export failed: {report.Summary}");
        return new() { ["passed"] = report.Passed, ["checks"] = report.Checks.Count, ["summary"] = report.Summary };
    })];

    private static Dictionary<string, object?> Exported(ExportResult result, bool cacheDropped) => new()
    {
        ["source_bytes"] = result.SourceSize, ["output_bytes"] = result.OutputSize, ["exporter_seconds"] = result.Duration.TotalSeconds,
        ["quantized_modules"] = result.QuantizedModules, ["cache_dropped"] = cacheDropped,
    };

    /// <summary>Each decoder layer's seconds, from the runner's progress (reported synchronously after each layer).</summary>
    private sealed class LayerClock : IProgress<RunnerProgress>
    {
        private readonly List<TimeSpan> _elapsed = [];

        public void Report(RunnerProgress value)
        {
            if (value.LayersDone == _elapsed.Count) _elapsed.Add(value.Elapsed);
        }

        public double[] LayerSeconds() => _elapsed.Zip(_elapsed.Skip(1), (a, b) => (b - a).TotalSeconds).ToArray();
    }
}
