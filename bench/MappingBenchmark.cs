using System.Buffers;
using System.Diagnostics;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Bench;

/// <summary>
/// How checkpoint bytes are best read so that resident memory stays flat: the memory map keeping its pages (the old
/// behaviour), the memory map releasing each read's pages when it is disposed (with or without mapping them in one
/// call first), the default <see cref="PageResidency"/> policy, and <c>pread</c> into a reused buffer — for the ways
/// the engine reads: 64 MiB pieces copied on (export's tensor copy, the forward pass's weight bands), 2 MiB and 256 KiB
/// weights scanned in place (export's per-expert quantization, small experts), and 4 KiB rows (the verifier's rows,
/// embedding lookups). Cold page cache once, warm as the median of interleaved rounds. Data: the first GiB of the
/// largest safetensors file of <see cref="BenchCheckpoint"/>.
/// </summary>
internal sealed class MappingBenchmark : IBenchmark
{
    private const int PieceBytes = 64 << 20, WarmRounds = 3;

    private static readonly (string Name, int Bytes, bool Scan)[] Patterns =
    [
        ("64 MiB pieces, copied", PieceBytes, false),
        ("2 MiB units, scanned", 2 << 20, true),
        ("256 KiB units, scanned", 256 << 10, true),
        ("4 KiB rows, copied", 4 << 10, false),
    ];

    /// <summary>The ways to read; null residency is pread.</summary>
    private static readonly (string Name, PageResidency? Residency)[] Modes =
    [
        ("map, keep pages", PageResidency.KeepPages),
        ("map, release each read", PageResidency.Default with { LargeReadBytes = 1, PrefaultLargeReads = false }),
        ("map, prefault + release each read", PageResidency.Default with { LargeReadBytes = 1 }),
        ("map, default policy", PageResidency.Default),
        ("pread, reused buffer", null),
    ];

    public string Name => "mapping";

    public string Description => "Reading a multi-GB safetensors file: map, map + page release, pread; GB/s and resident memory";

    public void Run(BenchContext context)
    {
        string? file = BenchCheckpoint.LargestShard(context);
        if (file is null) return;
        long limit = context.Quick ? 128L << 20 : 1L << 30;
        var destination = new byte[PieceBytes];
        Array.Fill(destination, (byte)1); // resident before any measurement
        var results = new List<object>();
        var rows = new List<string[]>();
        foreach (var pattern in Patterns)
        {
            var cold = Modes.Select(mode =>
            {
                PageCache.DropFile(file);
                return Measure(() => Pass(file, pattern, mode.Residency, limit, destination));
            }).ToArray();
            var warm = Modes.Select(_ => new List<PassResult>()).ToArray();
            for (int round = 0; round < WarmRounds; round++)
            {
                for (int m = 0; m < Modes.Length; m++) warm[m].Add(Measure(() => Pass(file, pattern, Modes[m].Residency, limit, destination)));
            }
            for (int m = 0; m < Modes.Length; m++)
            {
                foreach (var (cache, passes) in new[] { ("cold", new List<PassResult> { cold[m] }), ("warm", warm[m]) })
                {
                    double seconds = Median(passes.Select(p => p.Seconds)), cpu = Median(passes.Select(p => p.CpuSeconds));
                    long fileGrowth = passes.Max(p => p.PeakFileGrowthBytes), anonGrowth = passes.Max(p => p.PeakAnonGrowthBytes);
                    results.Add(new { file, pattern = pattern.Name, mode = Modes[m].Name, cache, bytes = passes[0].Bytes, runs = passes.Count,
                        medianSeconds = seconds, medianCpuSeconds = cpu, gbPerSecond = passes[0].Bytes / 1e9 / seconds,
                        cpuSecondsPerGB = cpu / (passes[0].Bytes / 1e9), peakFileGrowthBytes = fileGrowth, peakAnonGrowthBytes = anonGrowth });
                    rows.Add([pattern.Name, Modes[m].Name, cache, $"{passes[0].Bytes / 1e9 / seconds:F2}", $"{cpu / (passes[0].Bytes / 1e9):F2}",
                        $"{fileGrowth / 1e6:F0} MB", $"{anonGrowth / 1e6:F0} MB"]);
                }
            }
        }
        Console.WriteLine($"{file}, {limit >> 20} MiB per pass, warm: median of {WarmRounds} interleaved rounds; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end");
        BenchContext.PrintTable(["pattern", "mode", "cache", "GB/s", "CPU s/GB", "peak file growth", "peak anon growth"], rows);
        Console.WriteLine($"wrote {context.WriteJson(Name, results)}");
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed record PassResult(long Bytes, double Seconds, double CpuSeconds, long PeakFileGrowthBytes, long PeakAnonGrowthBytes);

    private static PassResult Measure(Func<long> pass)
    {
        GC.Collect();
        var before = ProcessMemory.Read();
        var process = Process.GetCurrentProcess();
        TimeSpan cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        var peak = ProcessMemory.Sample(() => bytes = pass());
        double seconds = clock.Elapsed.TotalSeconds;
        process.Refresh();
        return new PassResult(bytes, seconds, (process.TotalProcessorTime - cpu).TotalSeconds, peak.FileBytes - before.File, peak.AnonBytes - before.Anon);
    }

    /// <summary>Reads the first <paramref name="limit"/> data bytes of <paramref name="file"/> in one pattern and mode; returns the bytes read.</summary>
    private static long Pass(string file, (string Name, int Bytes, bool Scan) pattern, PageResidency? residency, long limit, byte[] destination)
    {
        int size = pattern.Bytes;
        var header = SafetensorsHeader.Read(file);
        long length = Math.Min(limit, header.DataLength) / size * size;
        var chunk = new TensorInfo("data", DType.BF16, [length / 2], 0, length);
        float sink = 0;
        if (residency is not null)
        {
            using var mapped = SafetensorsFile.Open(file, residency);
            for (long offset = 0; offset < length; offset += size)
            {
                using var bytes = mapped.Read(chunk, offset, size);
                sink += Consume(pattern.Scan, bytes.Span, destination, offset);
            }
        }
        else
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                for (long offset = 0; offset < length; offset += size)
                {
                    int read = RandomAccess.Read(handle, buffer.AsSpan(0, size), header.DataStart + offset);
                    if (read != size) throw new EndOfStreamException(file);
                    sink += Consume(pattern.Scan, buffer.AsSpan(0, size), destination, offset);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        GC.KeepAlive(sink);
        return length;
    }

    /// <summary>What the engine does with the bytes: copy them on (a tensor band, the writer, an embedding row) or scan them (amax, quantization).</summary>
    private static float Consume(bool scan, ReadOnlySpan<byte> bytes, byte[] destination, long offset)
    {
        if (scan) return Amax.Compute(bytes, DType.BF16).Amax;
        bytes.CopyTo(destination.AsSpan((int)(offset % PieceBytes), bytes.Length));
        return 0;
    }
}
