namespace ModelOptPS.Bench;

/// <summary>
/// Samples this process's memory from /proc/self/status while an action runs. Anonymous RSS (heap, buffers) is the
/// memory a model-size-independent design must keep flat; file-backed RSS is memory-mapped checkpoint pages, which
/// the kernel reclaims at will and which grow with whatever was touched.
/// </summary>
internal static class ProcessMemory
{
    public sealed record Peak(long AnonBytes, long FileBytes, long ManagedBytes);

    public static Peak Sample(Action action)
    {
        long peakAnon = 0, peakFile = 0, peakManaged = 0;
        using var done = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            do
            {
                var (anon, file) = Read();
                peakAnon = Math.Max(peakAnon, anon);
                peakFile = Math.Max(peakFile, file);
                peakManaged = Math.Max(peakManaged, GC.GetTotalMemory(false));
            }
            while (!done.Wait(10));
        }) { IsBackground = true };
        sampler.Start();
        try { action(); }
        finally
        {
            done.Set();
            sampler.Join();
        }
        return new Peak(peakAnon, peakFile, peakManaged);
    }

    /// <summary>Current anonymous and file-backed resident bytes.</summary>
    public static (long Anon, long File) Read()
    {
        long anon = 0, file = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = Kilobytes(line) * 1024;
            else if (line.StartsWith("RssFile:", StringComparison.Ordinal)) file = Kilobytes(line) * 1024;
        }
        return (anon, file);
    }

    /// <summary>Bytes this process has read through read() calls so far (/proc/self/io rchar).</summary>
    public static long BytesRead() =>
        long.Parse(File.ReadLines("/proc/self/io").First(l => l.StartsWith("rchar:", StringComparison.Ordinal))[6..].Trim());

    // "RssFile:\t  123456 kB": a tab after the name, and no space before numbers of 8 digits or more (10 GB and up).
    private static long Kilobytes(string line) => long.Parse(line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]);
}
