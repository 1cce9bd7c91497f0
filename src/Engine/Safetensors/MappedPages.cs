using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// Maps in and releases the resident pages of one read-only file mapping around reads (<c>madvise</c>, Linux).
/// Releasing (<c>MADV_DONTNEED</c>) a file-backed mapping only drops this process's page-table entries: the data stays
/// in the page cache, and the next touch of a released page — by a read still in progress on another thread, or a
/// later read of the same bytes — faults it back in from the cache (or the file) with the same contents. So releasing
/// a range another reader still uses is safe (shown by the concurrent-read test in MappedPageTests); it only costs
/// that reader a refault. Callers hold their reference on the map across both calls, so the range is never unmapped
/// (and never another mapping's memory) when madvise runs.
/// </summary>
internal sealed unsafe partial class MappedPages(PageResidency policy)
{
    private const int MadviseDontNeed = 4, MadvisePopulateRead = 22;

    private static readonly nuint PageMask = (nuint)Environment.SystemPageSize - 1;

    private readonly object _pendingLock = new();
    private nuint _pendingStart = nuint.MaxValue, _pendingEnd, _pendingFaults;

    /// <summary>A read of <paramref name="bytes"/> starts: a large one gets its pages mapped in one call.</summary>
    public void Starting(ReadOnlySpan<byte> bytes)
    {
        if (policy.Enabled && policy.PrefaultLargeReads && bytes.Length >= policy.LargeReadBytes) Advise(bytes, MadvisePopulateRead);
    }

    /// <summary>A read of <paramref name="bytes"/> is finished: release its pages now, or count it towards the next batch.</summary>
    public void Consumed(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty || !policy.Enabled) return;
        if (bytes.Length >= policy.LargeReadBytes)
        {
            Advise(bytes, MadviseDontNeed);
            return;
        }
        nuint start = Address(bytes), end = start + (nuint)bytes.Length;
        lock (_pendingLock)
        {
            _pendingStart = Math.Min(_pendingStart, start);
            _pendingEnd = Math.Max(_pendingEnd, end);
            _pendingFaults += FaultExtent(start, end);
            // Resident at most: every read's own fault extent, and never more than the span they all lie in.
            if (Math.Min(_pendingFaults, FaultExtent(_pendingStart, _pendingEnd)) < (nuint)policy.SmallReadBatchBytes) return;
            (start, end) = (_pendingStart, _pendingEnd);
            (_pendingStart, _pendingEnd, _pendingFaults) = (nuint.MaxValue, 0, 0);
        }
        Advise(start, end, MadviseDontNeed);
    }

    /// <summary>
    /// What touching [start, end) can make resident: the range widened to whole largest faults. Only counted, never
    /// advised: it can reach past this mapping.
    /// </summary>
    private static nuint FaultExtent(nuint start, nuint end)
    {
        const nuint mask = PageResidency.LargestFaultBytes - 1;
        return ((end + mask) & ~mask) - (start & ~mask);
    }

    private static void Advise(ReadOnlySpan<byte> bytes, int advice) => Advise(Address(bytes), Address(bytes) + (nuint)bytes.Length, advice);

    /// <summary>
    /// Advises the pages that hold any byte of [start, end): the start rounded down and the end rounded up to pages, which
    /// may take neighbouring bytes along — harmless, they refault — and stays inside this mapping (it starts on a page
    /// and ends on the page after the file's last byte), so no other mapping's memory is ever advised. A failed call
    /// (an older kernel without MADV_POPULATE_READ) only leaves pages to fault in or stay resident as they would anyway,
    /// so results are not checked.
    /// </summary>
    private static void Advise(nuint start, nuint end, int advice)
    {
        nuint first = start & ~PageMask, last = (end + PageMask) & ~PageMask;
        Madvise((void*)first, last - first, advice);
    }

    private static nuint Address(ReadOnlySpan<byte> bytes) => (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(bytes));

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
