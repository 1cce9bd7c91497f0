namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// How the pages of a <see cref="SafetensorsFile"/>'s memory map become resident and stop being resident, so that the
/// process's file-backed resident memory stays within what is being read instead of growing to the whole checkpoint.
/// A read of at least <see cref="LargeReadBytes"/> releases its own pages when it is disposed (and, with
/// <see cref="PrefaultLargeReads"/>, maps them in one call when it starts instead of one fault per 64 KiB); smaller
/// reads (norms, scalars, embedding rows, the verifier's rows) are only counted, across all files of the process, and
/// once they may hold <see cref="SmallReadBatchBytes"/> each file's span of them is released in one call
/// (<see cref="SmallReadBatch"/>), so tiny reads never cost a system call each.
/// </summary>
internal sealed record PageResidency(int LargeReadBytes, long SmallReadBatchBytes, bool PrefaultLargeReads)
{
    /// <summary>
    /// The most one read fault can make resident: the kernel maps a large page-cache folio whole, up to PMD size (a
    /// 4 KiB read of a freshly written file on Linux 6.18 / ext4 maps 2 MiB), and otherwise fault-around maps 64 KiB.
    /// Small reads are counted in these units, so a batch bounds what they really leave resident.
    /// </summary>
    public const int LargestFaultBytes = 2 << 20;

    /// <summary>
    /// Chosen from the mapping benchmark (bench README, "mapping"): one madvise costs tens of microseconds here (it
    /// flushes the TLB of every core the process runs on), as much as reading a few hundred KiB, so reads release their
    /// own pages only from 16 MiB up (the forward pass's 64 MiB weight bands, export's copies, the verifier's chunks),
    /// where it is lost in the read, and mapping those in one call instead of a fault per 64 KiB makes them faster than
    /// without release. Smaller reads (export's per-expert weights, rows) are released per 64 MiB of the whole process:
    /// file-backed memory stays within the reads in use plus 64 MiB, whatever the number of shards.
    /// </summary>
    public static PageResidency Default { get; } = new(LargeReadBytes: 16 << 20, SmallReadBatchBytes: 64L << 20, PrefaultLargeReads: true);

    /// <summary>Pages fault in on touch and stay mapped until the file is disposed (how every read behaved before; the benchmark's baseline).</summary>
    public static PageResidency KeepPages { get; } = new(int.MaxValue, long.MaxValue, PrefaultLargeReads: false);

    /// <summary>Only Linux is measured and verified; elsewhere the map keeps its pages (harmless: they are reclaimable).</summary>
    public bool Enabled => OperatingSystem.IsLinux() && this != KeepPages;
}
