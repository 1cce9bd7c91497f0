using System.Management.Automation;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// Turns whatever an engine call threw into one ErrorRecord: engine errors keep their id, kind and file; failures
/// from the file system and native code get their own ids; anything else is <see cref="InternalError"/>. The record's
/// message says what was being done and why it failed, without native stack frames; the record keeps the original
/// exception for <c>$Error[0].Exception</c>.
/// </summary>
internal static class FailureRecords
{
    /// <summary>A bug or an unforeseen state of the process; terminates the command.</summary>
    public const string InternalError = nameof(InternalError);

    /// <summary>The operating system refused access to a file or folder.</summary>
    public const string AccessDenied = nameof(AccessDenied);

    /// <summary>A file or folder vanished while the command used it.</summary>
    public const string FileNotFound = nameof(FileNotFound);

    /// <summary>Reading or writing a file failed (a device error, a broken mount, a file locked by another process).</summary>
    public const string FileSystemError = nameof(FileSystemError);

    /// <summary>libtorch (native code) failed; terminates the command, since native state may be unusable.</summary>
    public const string NativeError = nameof(NativeError);

    /// <summary>The process ran out of memory; terminates the command.</summary>
    public const string OutOfMemory = nameof(OutOfMemory);

    /// <summary>The record for <paramref name="exception"/> (unwrapped first), and whether it ends the command.</summary>
    public static (ErrorRecord Record, bool Terminating) For(Exception exception, string activity, object? target)
    {
        var ex = ParallelFailures.Unwrap(exception);
        if (ex is ModelOptException engine)
            return (new ErrorRecord(engine, engine.ErrorId, ModelOptCmdlet.Category(engine.Kind), target ?? engine.Path), false);
        var (id, category, terminating) = ex switch
        {
            UnauthorizedAccessException => (AccessDenied, ErrorCategory.PermissionDenied, false),
            FileNotFoundException or DirectoryNotFoundException => (FileNotFound, ErrorCategory.ObjectNotFound, false),
            IOException => (FileSystemError, ErrorCategory.ResourceUnavailable, false),
            InsufficientMemoryException or OutOfMemoryException => (OutOfMemory, ErrorCategory.ResourceUnavailable, true),
            ExternalException => (NativeError, ErrorCategory.NotSpecified, true),
            _ => (InternalError, ErrorCategory.NotSpecified, true),
        };
        return (new ErrorRecord(ex, id, category, target) { ErrorDetails = new ErrorDetails($"{activity} failed: {FirstLines(ex.Message)}") }, terminating);
    }

    /// <summary>libtorch appends "Exception raised from …" and "frame #n: …" lines to its message; users need the reason only.</summary>
    private static string FirstLines(string message)
    {
        var kept = message.Split('\n')
            .TakeWhile(line => !line.StartsWith("Exception raised from", StringComparison.Ordinal) && !line.TrimStart().StartsWith("frame #", StringComparison.Ordinal))
            .Select(line => line.TrimEnd())
            .Where(line => line.Length > 0);
        return string.Join(" ", kept);
    }
}
