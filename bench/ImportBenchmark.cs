using ModelOptPS.Engine.Model;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Bench;

/// <summary>
/// Import-HFModel's engine on a checkpoint the size of Qwen3-30B-A3B (48 layers, 128 experts, per-expert tensors;
/// about 61 GB in 7 shards, written sparse: real headers, no data). Shows that import reads headers only and takes
/// a fraction of a second whatever the model size.
/// </summary>
internal sealed class ImportBenchmark : IBenchmark
{
    public string Name => "import";

    public string Description => "import of a 61 GB (sparse) Qwen3-30B-A3B-shaped checkpoint: time, bytes read";

    public void Run(BenchContext context)
    {
        var dims = new Dims
        {
            Hidden = 2048, Layers = context.Quick ? 8 : 48, Heads = 32, KvHeads = 4, HeadDim = 128, Experts = 128, TopK = 8,
            ExpertIntermediate = 768, Vocab = 151936,
        };
        string folder = Path.Combine(Path.GetTempPath(), "modeloptps-bench-import-" + Environment.ProcessId);
        try
        {
            TinyCheckpoints.Create("qwen3_moe", dims).WriteSparse(folder, maxShardBytes: 10_000_000_000);
            long readBefore = ProcessMemory.BytesRead();
            using (var first = ModelImporter.Import(folder))
            {
                long headerBytesRead = ProcessMemory.BytesRead() - readBefore;
                var timing = BenchContext.Measure(() => ModelImporter.Import(folder).Dispose(), warmup: 1, minRuns: 5, minSeconds: 3);
                var result = new
                {
                    checkpoint = "qwen3_moe layout, Qwen3-30B-A3B dimensions, sparse shards",
                    sizeOnDiskBytes = first.SizeOnDisk,
                    shards = first.ShardCount,
                    tensors = first.TensorCount,
                    modules = first.Modules.Count,
                    medianSeconds = timing.MedianSeconds,
                    bestSeconds = timing.BestSeconds,
                    runs = timing.Runs,
                    bytesReadByFirstImport = headerBytesRead,
                    fractionOfCheckpointRead = (double)headerBytesRead / first.SizeOnDisk,
                    tensorDataMapped = first.Checkpoint.Shards.Any(s => s.IsMapped),
                };
                BenchContext.PrintTable(["size on disk", "tensors", "median s", "best s", "bytes read", "data mapped"],
                [[$"{first.SizeOnDisk / 1e9:F1} GB", $"{first.TensorCount}", $"{timing.MedianSeconds:F3}", $"{timing.BestSeconds:F3}",
                  $"{headerBytesRead / 1e6:F2} MB", $"{result.tensorDataMapped}"]]);
                Console.WriteLine($"wrote {context.WriteJson(Name, result)}");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
