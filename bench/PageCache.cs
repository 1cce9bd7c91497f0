using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ModelOptPS.Bench;

/// <summary>
/// The page cache of a folder's files, for cold- and warm-cache timings without root: dropping asks the kernel to
/// evict the files' clean cached pages (posix_fadvise POSIX_FADV_DONTNEED; Linux only), warming reads them once.
/// </summary>
internal static partial class PageCache
{
    private const int PosixFadvDontNeed = 4;

    /// <summary>Evicts the cached pages of every file under <paramref name="folder"/>; false where that is not possible.</summary>
    public static bool Drop(string folder)
    {
        if (!OperatingSystem.IsLinux()) return false;
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)) DropFile(file);
        return true;
    }

    /// <summary>Evicts the cached pages of one file (Linux); pages another process still maps stay cached.</summary>
    public static void DropFile(string file)
    {
        using SafeFileHandle handle = File.OpenHandle(file);
        int error = Fadvise(handle, 0, 0, PosixFadvDontNeed);
        if (error != 0) throw new IOException($"posix_fadvise(DONTNEED) on {file} failed with errno {error}.");
    }

    /// <summary>Reads every file under <paramref name="folder"/> once, so that the next reader finds it cached.</summary>
    public static void Warm(string folder)
    {
        var buffer = new byte[8 << 20];
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (stream.Read(buffer) > 0) { }
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(SafeFileHandle fd, long offset, long length, int advice);
}
