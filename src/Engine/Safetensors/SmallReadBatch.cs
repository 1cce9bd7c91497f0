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
    private static readonly object Lock = new();
    private static readonly HashSet<MappedPages> Pending = [];
    private static nuint _estimate;

    /// <summary>Counts the read [start, end) of <paramref name="pages"/>' file, and releases the batch once it is full.</summary>
    public static void Add(MappedPages pages, SafeBuffer map, nuint start, nuint end)
    {
        List<(WeakReference<SafeBuffer> Map, nuint Start, nuint End)> full;
        lock (Lock)
        {
            nuint before = Estimate(pages);
            pages.PendingMap ??= new WeakReference<SafeBuffer>(map);
            pages.PendingStart = Math.Min(pages.PendingStart, start);
            pages.PendingEnd = Math.Max(pages.PendingEnd, end);
            pages.PendingFaults += FaultExtent(start, end);
            Pending.Add(pages);
            _estimate += Estimate(pages) - before;
            if (_estimate < (nuint)pages.Policy.SmallReadBatchBytes) return;
            full = Pending.Select(p => (p.PendingMap!, p.PendingStart, p.PendingEnd)).ToList();
            foreach (var p in Pending) Reset(p);
            Pending.Clear();
            _estimate = 0;
        }
        foreach (var (fileMap, first, last) in full)
        {
            if (fileMap.TryGetTarget(out var target)) MappedPages.Release(target, first, last);
        }
    }

    /// <summary>A file is closed: its pending pages went with its mapping.</summary>
    public static void Forget(MappedPages pages)
    {
        lock (Lock)
        {
            if (!Pending.Remove(pages)) return;
            _estimate -= Estimate(pages);
            Reset(pages);
        }
    }

    /// <summary>What a file's pending reads may hold resident: each read's fault extent, and never more than the span they lie in.</summary>
    private static nuint Estimate(MappedPages pages) =>
        pages.PendingFaults == 0 ? 0 : Math.Min(pages.PendingFaults, FaultExtent(pages.PendingStart, pages.PendingEnd));

    /// <summary>
    /// What touching [start, end) can make resident: the range widened to whole largest faults. Only counted, never
    /// advised: it can reach past the mapping.
    /// </summary>
    private static nuint FaultExtent(nuint start, nuint end)
    {
        const nuint mask = PageResidency.LargestFaultBytes - 1;
        return ((end + mask) & ~mask) - (start & ~mask);
    }

    private static void Reset(MappedPages pages)
    {
        pages.PendingMap = null;
        (pages.PendingStart, pages.PendingEnd, pages.PendingFaults) = (nuint.MaxValue, 0, 0);
    }
}
