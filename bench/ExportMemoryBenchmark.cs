using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Bench;

/// <summary>
/// Export-Nvfp4's engine on two generated Qwen3-MoE checkpoints of different size (same layer shapes, 4x the layers):
/// peak anonymous memory must stay flat (one tensor at a time), while throughput is reported in source GB/s.
/// Run it alone (<c>--only export</c>) for clean peaks.
/// </summary>
internal sealed class ExportMemoryBenchmark : IBenchmark
{
    public string Name => "export";

    public string Description => "NVFP4 export of 1 GB and 3.4 GB Qwen3-MoE checkpoints: peak memory and throughput";

    public void Run(BenchContext context)
    {
        int[] layerCounts = context.Quick ? [1, 2] : [4, 16];
        var rows = new List<string[]>();
        var results = new List<object>();
        foreach (int layers in layerCounts)
        {
            var dims = new Dims { Hidden = 1024, Layers = layers, Heads = 16, KvHeads = 4, HeadDim = 64, Experts = 32, TopK = 4, ExpertIntermediate = 1024, Vocab = 32000 };
            string root = Path.Combine(Path.GetTempPath(), $"modeloptps-bench-export-{Environment.ProcessId}-{layers}");
            try
            {
                var source = TinyCheckpoints.Write("qwen3_moe", Path.Combine(root, "src"), dims, maxShardBytes: 1_000_000_000);
                using var model = ModelImporter.Import(source);
                model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT"));
                model.Statistics = SyntheticStatistics.For(model);
                GC.Collect();
                var before = ProcessMemory.Read();
                ExportResult? result = null;
                var peak = ProcessMemory.Sample(() =>
                    result = CheckpointExporter.Export(model, Path.Combine(root, "out"), new ExportOptions { MaxShardBytes = 1_000_000_000 }));
                double seconds = result!.Duration.TotalSeconds;
                results.Add(new
                {
                    layers, sourceBytes = result.SourceSize, outputBytes = result.OutputSize, seconds,
                    sourceGBPerSecond = result.SourceSize / 1e9 / seconds,
                    anonBeforeBytes = before.Anon, peakAnonBytes = peak.AnonBytes, peakAnonGrowthBytes = peak.AnonBytes - before.Anon,
                    peakManagedHeapBytes = peak.ManagedBytes, peakFileBackedBytes = peak.FileBytes,
                });
                rows.Add([$"{result.SourceSize / 1e9:F2} GB", $"{result.OutputSize / 1e9:F2} GB", $"{seconds:F1}", $"{result.SourceSize / 1e9 / seconds:F2}",
                    $"{(peak.AnonBytes - before.Anon) / 1e6:F0} MB", $"{peak.AnonBytes / 1e6:F0} MB", $"{peak.FileBytes / 1e6:F0} MB"]);
            }
            finally
            {
                Directory.Delete(root, recursive: true);
            }
        }
        BenchContext.PrintTable(["source", "output", "seconds", "GB/s", "anon growth", "peak anon", "peak mapped"], rows);
        Console.WriteLine($"wrote {context.WriteJson(Name, results)}");
    }
}
