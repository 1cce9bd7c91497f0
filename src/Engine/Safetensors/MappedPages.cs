using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// Maps in and releases the resident pages of one file's read-only mapping around reads (<c>madvise</c>, Linux).
/// Releasing (<c>MADV_DONTNEED</c>) a file-backed mapping only drops this process's page-table entries: the data stays
/// in the page cache, and the next touch of a released page — by a read still in progress on another thread, or a
/// later read of the same bytes — faults it back in from the cache (or the file) with the same contents. So releasing
/// a range another reader still uses is safe (shown by the concurrent-read test in MappedPageTests); it only costs
/// that reader a refault. Every call holds a reference on the map's handle, so the range is never unmapped (and never
/// another mapping's memory) when madvise runs.
/// </summary>
internal sealed unsafe partial class MappedPages(PageResidency policy)
{
    private const int MadviseDontNeed = 4, MadvisePopulateRead = 22;

    private static readonly nuint PageMask = (nuint)Environment.SystemPageSize - 1;

    public PageResidency Policy => policy;

    /// <summary>A read of <paramref name="bytes"/> starts: a large one gets its pages mapped in one call.</summary>
    public void Starting(ReadOnlySpan<byte> bytes)
    {
        if (policy.Enabled && policy.PrefaultLargeReads && bytes.Length >= policy.LargeReadBytes)
            Advise(Address(bytes), Address(bytes) + (nuint)bytes.Length, MadvisePopulateRead);
    }

    /// <summary>
    /// A read of <paramref name="bytes"/> through <paramref name="map"/> (whose reference the caller holds) is finished:
    /// release its pages now, or leave them to the process-wide batch of small reads.
    /// </summary>
    public void Consumed(SafeBuffer map, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty || !policy.Enabled) return;
        nuint start = Address(bytes), end = start + (nuint)bytes.Length;
        if (bytes.Length >= policy.LargeReadBytes) Advise(start, end, MadviseDontNeed);
        else SmallReadBatch.Add(this, map, start, end);
    }

    /// <summary>
    /// Releases [start, end) of <paramref name="map"/> unless the map was closed meanwhile (its pages went with it).
    /// For batches of other files, whose readers hold no reference now.
    /// </summary>
    public static void Release(SafeBuffer map, nuint start, nuint end)
    {
        bool added = false;
        try
        {
            map.DangerousAddRef(ref added);
            Advise(start, end, MadviseDontNeed);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added) map.DangerousRelease();
        }
    }

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
