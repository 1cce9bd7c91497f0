using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using ModelOptPS.Engine.Execution;

namespace ModelOptPS.Bench;

/// <summary>
/// The scale benchmark (issue 13): a checkpoint with the real Qwen3.6-35B-A3B shapes (<see cref="ScaleModel"/>,
/// <c>--layers</c> decoder layers, default 2), generated once and cached under the output folder, then each stage in
/// its own child process (so each memory peak is the stage's own): libtorch's matmul peak, import, W4A16 export and a
/// plain copy of the same files, cold and warm cache, W4A4 calibration (<c>--samples</c> × <c>--sequence-length</c>,
/// default 32 × 512) and its export, and verification against the source. Reports the export/copy ratio, calibration
/// tokens/s and useful FLOP/s over the peak, peak anonymous and file-backed memory per stage, and each stage
/// extrapolated to the real 40 layers.
/// </summary>
internal sealed class ScaleBenchmark : IBenchmark
{
    public string Name => "scale";

    public string Description => "Qwen3.6-35B-A3B shapes (--layers N, default 2): W4A16 export vs copy, W4A4 calibration FLOP/s vs matmul peak, memory per stage";

    public void Run(BenchContext context)
    {
        if (context.Options.TryGetValue("stage", out string? stage))
        {
            RunStage(context, stage);
            return;
        }

        int layers = context.Option("layers", 2, 2, ScaleModel.RealLayers);
        int samples = context.Option("samples", context.Quick ? 4 : 32, 1, 4096);
        int sequenceLength = context.Option("sequence-length", context.Quick ? 128 : 512, 16, 32768);
        string computeDType = ComputeDTypeOption(context).ToString();
        var model = ScaleModel.WithLayers(layers);
        var (source, generateSeconds) = model.Ensure(context.OutputDirectory);
        string work = Path.Combine(context.OutputDirectory, $"scale-work-{Environment.ProcessId}");
        var stages = new List<ScaleStage>();
        try
        {
            string Target(string name) => Path.Combine(work, name);
            ScaleStage[] Child(string name, params string[] options)
            {
                var result = RunChild(context, work, [.. options, "--stage", name, "--model", source, "--work", work,
                    "--samples", $"{samples}", "--sequence-length", $"{sequenceLength}"]);
                stages.AddRange(result);
                foreach (var s in result)
                    Console.WriteLine($"  {s.Stage}: {s.WallSeconds:F1} s wall, {s.CpuSeconds:F1} s CPU, peak anon {s.PeakAnonBytes / 1e6:F0} MB, peak file {s.PeakFileBytes / 1e6:F0} MB");
                return result;
            }

            Child("peak");
            Child("import");
            foreach (bool cold in new[] { true, false })
            {
                if (!cold) PageCache.Warm(source);
                Child("export-w4a16", "--cold", cold ? "1" : "0");
                Directory.Delete(Target("w4a16"), recursive: true);
                if (!cold) PageCache.Warm(source);
                Child("copy", "--cold", cold ? "1" : "0");
                Directory.Delete(Target("copy"), recursive: true);
            }
            Child("calibrate", "--compute-dtype", computeDType);
            Child("verify");
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }

        var report = ScaleReport.Build(model, stages, samples, sequenceLength, generateSeconds);
        report.Print();
        Console.WriteLine($"wrote {context.WriteJson(Name, report.Json)}");
        context.WriteJson($"{Name}-l{layers}", report.Json);
        if (ScaleComparison.Compare(context.OutputDirectory, layers) is { } comparison)
            Console.WriteLine($"wrote {context.WriteJson($"{Name}-comparison", comparison)}");
    }

    /// <summary>Runs one stage in this (child) process and writes its measurements as JSON to <c>--work/stage-result.json</c>.</summary>
    private static void RunStage(BenchContext context, string stage)
    {
        string source = context.Options["model"], work = context.Options["work"];
        bool cold = context.Option("cold", 0, 0, 1) == 1;
        ScaleStage[] result = stage switch
        {
            "peak" => ScaleStages.MatmulPeak(context.Quick ? 2048 : 4096, context.Quick),
            "import" => ScaleStages.Import(source),
            "export-w4a16" => ScaleStages.WeightOnlyExport(source, Path.Combine(work, "w4a16"), cold),
            "copy" => ScaleStages.Copy(source, Path.Combine(work, "copy"), cold),
            "calibrate" => ScaleStages.CalibrateAndExport(source, Path.Combine(work, "w4a4"),
                context.Option("samples", 32, 1, 4096), context.Option("sequence-length", 512, 16, 32768), ComputeDTypeOption(context)),
            "verify" => ScaleStages.Verify(Path.Combine(work, "w4a4"), source),
            _ => throw new ArgumentException($"Unknown scale stage '{stage}'."),
        };
        File.WriteAllText(ResultFile(work), JsonSerializer.Serialize(result));
    }

    /// <summary><c>--compute-dtype BFloat16|Float32</c>: the dtype calibration runs in (default BFloat16, as Invoke-Calibration).</summary>
    private static ComputeDType ComputeDTypeOption(BenchContext context) =>
        !context.Options.TryGetValue("compute-dtype", out string? value) ? ComputeDType.BFloat16
        : Enum.TryParse(value, ignoreCase: true, out ComputeDType type) && Enum.IsDefined(type) ? type
        : throw new ArgumentException($"--compute-dtype must be BFloat16 or Float32, not '{value}'.");

    private static string ResultFile(string work) => Path.Combine(work, "stage-result.json");

    /// <summary>This benchmark program again, with <paramref name="arguments"/>; its output goes to ours.</summary>
    private static ScaleStage[] RunChild(BenchContext context, string work, string[] arguments)
    {
        Directory.CreateDirectory(work);
        File.Delete(ResultFile(work));
        string host = Environment.ProcessPath!;
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        // Under `dotnet ModelOptPS.Bench.dll` the host is dotnet itself: name the assembly.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(Assembly.GetExecutingAssembly().Location);
        foreach (string argument in (string[])["--only", "scale", "--out", context.OutputDirectory, .. context.Quick ? ["--quick"] : Array.Empty<string>(), .. arguments])
            start.ArgumentList.Add(argument);
        using var child = Process.Start(start)!;
        child.WaitForExit();
        if (child.ExitCode != 0 || !File.Exists(ResultFile(work)))
            throw new InvalidOperationException($"The scale stage '{string.Join(' ', arguments)}' failed (exit code {child.ExitCode}).");
        return JsonSerializer.Deserialize<ScaleStage[]>(File.ReadAllText(ResultFile(work)))!;
    }
}
