using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Asks Linux to back freshly allocated, not yet touched memory with transparent huge pages (<c>MADV_HUGEPAGE</c>):
/// where THP is in its usual "madvise" mode, anonymous memory otherwise faults in 4 KiB at a time, and a layer's
/// weights (1.6 GB of experts at Qwen3.6-35B-A3B's shape) then cost hundreds of thousands of page faults, each
/// zeroing its page, before the copy that fills them. Only the whole 2 MiB pages inside the span are advised; a
/// failed call (THP off, another OS) leaves ordinary pages, so results are not checked.
/// </summary>
internal static unsafe partial class HugePages
{
    private const int MadviseHugePage = 14;
    private const nuint HugePageBytes = 2 << 20;

    public static void Advise(Span<byte> untouched)
    {
        if (!OperatingSystem.IsLinux() || (nuint)untouched.Length < 2 * HugePageBytes) return;
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(untouched));
        nuint first = (start + HugePageBytes - 1) & ~(HugePageBytes - 1), last = (start + (nuint)untouched.Length) & ~(HugePageBytes - 1);
        if (last > first) Madvise((void*)first, last - first, MadviseHugePage);
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
