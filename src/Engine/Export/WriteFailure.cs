using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Export;

/// <summary>An I/O failure while writing an export, as the error a user can act on: a full disk, or any other write error.</summary>
internal static class WriteFailure
{
    // ENOSPC and EDQUOT on Unix (.NET keeps the errno as the HResult); ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL on Windows.
    private const int Enospc = 28, Edquot = 122, ErrorDiskFull = 0x70, ErrorHandleDiskFull = 0x27;

    public static bool Is(Exception ex) => ex is IOException or UnauthorizedAccessException;

    public static ModelOptException From(Exception ex, string target) =>
        IsDiskFull(ex)
            ? new ModelOptException(ExportErrorIds.ExportDiskFull, ErrorKind.WriteError,
                $"The disk that holds '{target}' is full ({ex.Message}). Nothing was exported and the unfinished files were " +
                "removed; free some space or choose a folder on another disk.", target, ex)
            : new ModelOptException(ExportErrorIds.ExportWriteFailed, ErrorKind.WriteError,
                $"Writing the export '{target}' failed: {ex.Message} Nothing was exported and the unfinished files were removed.", target, ex);

    private static bool IsDiskFull(Exception ex) =>
        ex is IOException io && (OperatingSystem.IsWindows()
            ? (io.HResult & 0xFFFF) is ErrorDiskFull or ErrorHandleDiskFull
            : io.HResult is Enospc or Edquot);
}
