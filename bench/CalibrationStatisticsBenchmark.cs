using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Bench;

/// <summary>
/// What collecting calibration statistics costs on a generated Qwen3.5-MoE (DeltaNet, attention, fused experts): the
/// layer-by-layer calibration pass with max statistics only (what calibration collected before the headroom
/// histograms), with the headroom histograms of every Linear input (what an NVFP4_DEFAULT calibration collects now),
/// and with Hessian blocks too (local Hessian); the bare forward for scale. Runs are interleaved, so load from other
/// work on the machine falls on all alike.
/// </summary>
internal sealed class CalibrationStatisticsBenchmark : IBenchmark
{
    private static readonly Dims Model = new() { Hidden = 512, Heads = 8, KvHeads = 2, HeadDim = 64, Experts = 16, ExpertIntermediate = 256, SharedIntermediate = 256 };

    public string Name => "calibration-stats";

    public string Description => "calibration pass on generated Qwen3.5-MoE: max only vs + headroom histograms vs + Hessian blocks";

    public void Run(BenchContext context)
    {
        TorchRuntime.EnsureLoaded();
        string folder = Path.Combine(Path.GetTempPath(), $"modeloptps-bench-calibration-{Environment.ProcessId}");
        try
        {
            TinyCheckpoints.Write("qwen3_5_moe", folder, Model);
            using var model = ModelImporter.Import(folder);
            var sequences = ForwardBenchmark.Sequences(context.Quick ? 4 : 16, context.Quick ? 128 : 256, model.VocabSize ?? 256);
            long tokens = sequences.Sum(s => s.LongLength);
            Console.WriteLine($"model: qwen3_5_moe {Model}; {sequences.Count} sequences x {sequences[0].Length} tokens, torch threads {get_num_threads()}");
            var noExperts = new Dictionary<string, int>();
            var runs = new (string Name, Func<StatisticsCollector?> Collector)[]
            {
                ("forward, no observer", () => null),
                ("max statistics only", () => new StatisticsCollector(noExperts, _ => false)),
                ("max + headroom histograms", () => new StatisticsCollector(noExperts)),
                ("max + headroom + Hessian blocks", () => new StatisticsCollector(noExperts, collectHessians: true)),
            };
            using var runner = ModelRunner.Create(model);
            var rows = new List<string[]>();
            var results = new List<object>();
            // Also on one thread: on a machine shared with other work, libtorch's pool waits at a barrier in every op and
            // multi-threaded timings mostly measure the other work.
            int threads = get_num_threads();
            foreach (int count in new[] { threads, 1 }.Distinct())
            {
                set_num_threads(count);
                var timings = BenchContext.MeasureInterleaved(runs.Select(r => (Action)(() =>
                {
                    using var collector = r.Collector();
                    runner.RunLayerwise(sequences, collector);
                    collector?.HessianBlocks();
                })).ToList(), 1, 3, 0);
                double baseline = timings[1].MedianSeconds;
                for (int i = 0; i < runs.Length; i++)
                {
                    string key = $"{runs[i].Name}, {count} thread(s)";
                    double slowdown = timings[i].MedianSeconds / baseline - 1;
                    rows.Add([key, $"{timings[i].MedianSeconds:F2}", $"{timings[i].BestSeconds:F2}", $"{tokens / timings[i].MedianSeconds:F0}", $"{slowdown * 100:+0.0;-0.0}%"]);
                    results.Add(new
                    {
                        run = key, tokens, median_seconds = timings[i].MedianSeconds, best_seconds = timings[i].BestSeconds,
                        tokens_per_second = tokens / timings[i].MedianSeconds, slowdown_vs_max_only = slowdown,
                    });
                }
            }
            set_num_threads(threads);
            BenchContext.PrintTable(["run", "median s", "best s", "tokens/s", "vs max only"], rows);
            string load = File.ReadAllText("/proc/loadavg").Trim();
            Console.WriteLine($"load average {load}");
            Console.WriteLine($"wrote {context.WriteJson(Name, new { torch_threads = get_num_threads(), load_average = load, model = Model.ToString(), results })}");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
