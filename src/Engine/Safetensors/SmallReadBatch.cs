using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// Small reads of every mapped file in the process, left resident until together they may hold
/// <see cref="PageResidency.SmallReadBatchBytes"/>; then each file's span of them is released in one call. Counting
/// them across files, not per file, keeps the bound independent of how many shards a checkpoint has (a file read
/// last would otherwise keep its unreleased remainder until it is closed). Maps are held weakly, so a file nobody
/// disposed is still unmapped by the GC.
/// </summary>
internal static class SmallReadBatch
{
    /// <summary>One file's reads since its last release: the span they lie in and the sum of their fault extents.</summary>
    private sealed class Pending(SafeBuffer map)
    {
        public WeakReference<SafeBuffer> Map { get; } = new(map);

        public nuint Start { get; set; } = nuint.MaxValue;

        public nuint End { get; set; }

        public nuint Faults { get; set; }

        /// <summary>What these reads may hold resident: each read's fault extent, and never more than the span they lie in.</summary>
        public nuint Estimate => Faults == 0 ? 0 : Math.Min(Faults, FaultExtent(Start, End));
    }

    private static readonly object Lock = new();
    private static readonly Dictionary<MappedPages, Pending> Files = [];
    private static nuint _estimate;

    /// <summary>Counts the read [start, end) of <paramref name="pages"/>' file, and releases the batch once it is full.</summary>
    public static void Add(MappedPages pages, SafeBuffer map, nuint start, nuint end)
    {
        Pending[] full;
        lock (Lock)
        {
            if (!Files.TryGetValue(pages, out var pending)) Files.Add(pages, pending = new Pending(map));
            nuint before = pending.Estimate;
            pending.Start = Math.Min(pending.Start, start);
            pending.End = Math.Max(pending.End, end);
            pending.Faults += FaultExtent(start, end);
            _estimate += pending.Estimate - before;
            if (_estimate < (nuint)pages.Policy.SmallReadBatchBytes) return;
            full = TakeAll();
        }
        Release(full);
    }

    /// <summary>
    /// Releases every pending small read now. Tests start from an empty batch with it: reads of files nobody disposed
    /// stay counted until the next release, so an earlier test's leftovers could otherwise fill a test's batch.
    /// </summary>
    internal static void Flush()
    {
        Pending[] all;
        lock (Lock) all = TakeAll();
        Release(all);
    }

    private static Pending[] TakeAll()
    {
        Pending[] all = [.. Files.Values];
        Files.Clear();
        _estimate = 0;
        return all;
    }

    private static void Release(Pending[] files)
    {
        foreach (var pending in files)
        {
            if (pending.Map.TryGetTarget(out var target)) MappedPages.Release(target, pending.Start, pending.End);
        }
    }

    /// <summary>A file is closed: its pending pages went with its mapping.</summary>
    public static void Forget(MappedPages pages)
    {
        lock (Lock)
        {
            if (Files.Remove(pages, out var pending)) _estimate -= pending.Estimate;
        }
    }

    /// <summary>
    /// What touching [start, end) can make resident: the range widened to whole largest faults. Only counted, never
    /// advised: it can reach past the mapping.
    /// </summary>
    private static nuint FaultExtent(nuint start, nuint end)
    {
        const nuint mask = PageResidency.LargestFaultBytes - 1;
        return ((end + mask) & ~mask) - (start & ~mask);
    }
}
