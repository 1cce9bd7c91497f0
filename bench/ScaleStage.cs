using System.Diagnostics;
using System.Text.Json;

namespace ModelOptPS.Bench;

/// <summary>
/// One measured stage of the scale benchmark: wall and CPU seconds of this process, its resident memory before, and
/// the peak during the stage of anonymous memory (heap, tensors, buffers) and of file-backed memory (mapped
/// checkpoint pages), plus what the stage reports (tokens, bytes, ...).
/// </summary>
internal sealed record ScaleStage(
    string Stage, double WallSeconds, double CpuSeconds, long AnonBeforeBytes, long FileBeforeBytes, long PeakAnonBytes, long PeakFileBytes,
    Dictionary<string, JsonElement> Details)
{
    /// <summary>Runs <paramref name="action"/> after a full GC, sampling memory and timing it.</summary>
    public static ScaleStage Measure(string stage, Func<Dictionary<string, object?>> action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = ProcessMemory.Read();
        var process = Process.GetCurrentProcess();
        TimeSpan cpuBefore = process.TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        Dictionary<string, object?> details = [];
        var peak = ProcessMemory.Sample(() => details = action());
        double wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        var json = details.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value));
        return new ScaleStage(stage, wall, cpu, before.Anon, before.File, peak.AnonBytes, peak.FileBytes, json);
    }

    public double Number(string key) => Details[key].GetDouble();
}
