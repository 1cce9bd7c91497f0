using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ModelOptPS.Bench;

/// <summary>
/// Drops a file's pages from the page cache (<c>posix_fadvise(POSIX_FADV_DONTNEED)</c>; no root needed) so the next
/// read comes from the disk: a cold-cache measurement. Pages another process still maps stay cached.
/// </summary>
internal static partial class ColdCache
{
    private const int FadviseDontNeed = 4;

    public static void Drop(string path)
    {
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        int error = Fadvise(handle.DangerousGetHandle().ToInt32(), 0, 0, FadviseDontNeed);
        if (error != 0) throw new IOException($"posix_fadvise(DONTNEED) on '{path}' failed with error {error}.");
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(int fd, long offset, long length, int advice);
}
