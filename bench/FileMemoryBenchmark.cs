using System.Diagnostics;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Bench;

/// <summary>
/// Peak resident memory of each stage on a multi-GB checkpoint (<see cref="BenchCheckpoint"/>): import, W4A16 export,
/// W4A4 calibration, verification against the source, and quality of the export. Each stage imports the model afresh
/// and disposes it, so a stage's peak is its own. File-backed memory (mapped checkpoint pages) must not grow with the
/// checkpoint; anonymous memory is the working set. Run it alone (<c>--only filememory</c>) for clean peaks.
/// </summary>
internal sealed class FileMemoryBenchmark : IBenchmark
{
    public string Name => "filememory";

    public string Description => "Peak file-backed and anonymous memory per stage (import, export, calibration, verification, quality) on a multi-GB checkpoint";

    public void Run(BenchContext context)
    {
        string? checkpoint = BenchCheckpoint.Folder(context);
        if (checkpoint is null) return;
        string work = Path.Combine(Path.GetTempPath(), $"modeloptps-bench-filememory-{Environment.ProcessId}");
        string export = Path.Combine(work, "w4a16");
        var tokens = new SequenceOptions { NumSamples = context.Quick ? 1 : 4, SequenceLength = context.Quick ? 32 : 128 };
        var stages = new (string Name, Action Run)[]
        {
            ("import", () => { using var model = ModelImporter.Import(checkpoint); }),
            ("W4A16 export", () => WithModel(checkpoint, "W4A16_NVFP4", model => CheckpointExporter.Export(model, export, new ExportOptions()))),
            ("W4A4 calibration", () => WithModel(checkpoint, "NVFP4_DEFAULT", model => Calibrator.Run(model, new CalibrationOptions { Sequences = tokens }))),
            ("verification", () => QuantFormatVerifier.Verify(export, checkpoint)),
            ("quality", () => WithModel(checkpoint, "W4A16_NVFP4", model => QualityMeasurer.MeasureExport(model, export, new QualityOptions { Sequences = tokens }))),
        };
        var results = new List<object>();
        var rows = new List<string[]>();
        try
        {
            foreach (var (name, run) in stages)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                var before = ProcessMemory.Read();
                var process = Process.GetCurrentProcess();
                TimeSpan cpu = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                var peak = ProcessMemory.Sample(run);
                double seconds = clock.Elapsed.TotalSeconds;
                process.Refresh();
                double cpuSeconds = (process.TotalProcessorTime - cpu).TotalSeconds;
                results.Add(new { stage = name, seconds, cpuSeconds, fileBeforeBytes = before.File, peakFileBytes = peak.FileBytes,
                    anonBeforeBytes = before.Anon, peakAnonBytes = peak.AnonBytes });
                rows.Add([name, $"{seconds:F1}", $"{cpuSeconds:F1}", $"{before.File / 1e6:F0} MB", $"{peak.FileBytes / 1e6:F0} MB",
                    $"{before.Anon / 1e6:F0} MB", $"{peak.AnonBytes / 1e6:F0} MB"]);
            }
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
        long size = Directory.EnumerateFiles(checkpoint, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"{checkpoint}: {size / 1e9:F2} GB of safetensors; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end");
        BenchContext.PrintTable(["stage", "seconds", "CPU s", "file before", "peak file", "anon before", "peak anon"], rows);
        Console.WriteLine($"wrote {context.WriteJson(Name, new { checkpoint, checkpointBytes = size, stages = results })}");
    }

    private static void WithModel(string checkpoint, string preset, Action<HFModel> run)
    {
        using var model = ModelImporter.Import(checkpoint);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        run(model);
    }
}
