namespace ModelOptPS.Bench;

/// <summary>
/// The multi-GB checkpoint the memory benchmarks read: <c>MODELOPTPS_BENCH_CHECKPOINT</c>, or the soak checkpoint
/// bench/Soak.ps1 writes under the output folder. Benchmarks skip (with a message) when there is none.
/// </summary>
internal static class BenchCheckpoint
{
    public const string Variable = "MODELOPTPS_BENCH_CHECKPOINT";

    public static string? Folder(BenchContext context)
    {
        string folder = Environment.GetEnvironmentVariable(Variable)
                        ?? Path.Combine(context.OutputDirectory, "soak-qwen3_5_moe-h2048-l8-e64");
        if (Directory.Exists(folder)) return Path.GetFullPath(folder);
        Console.WriteLine($"skipped: no checkpoint at '{folder}'. Run bench/Soak.ps1 once or set {Variable} to a checkpoint folder.");
        return null;
    }

    public static string? LargestShard(BenchContext context)
    {
        string? folder = Folder(context);
        return folder is null ? null : Directory.EnumerateFiles(folder, "*.safetensors").MaxBy(f => new FileInfo(f).Length);
    }
}
