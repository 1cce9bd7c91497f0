using System.Management.Automation;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// Shared plumbing for the module's cmdlets: provider-aware path resolution, the stop token, and the one way of calling
/// the engine (<see cref="RunEngine"/>), which turns every failure into an ErrorRecord (see <see cref="FailureRecords"/>).
/// </summary>
public abstract class ModelOptCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Cancelled by Ctrl+C; the engines check it between tensors, layers and sequences.</summary>
    protected CancellationToken StopToken => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>
    /// Runs engine work, the one way every cmdlet calls the engine. A failure becomes one ErrorRecord about
    /// <paramref name="target"/> (see <see cref="FailureRecords"/>): non-terminating for engine and file-system errors,
    /// which concern one input, unless <paramref name="terminating"/>; terminating for internal, native and memory
    /// failures. Ctrl+C stops the pipeline; PowerShell's own flow (a stopped pipeline, -ErrorAction Stop) passes
    /// through. <paramref name="activity"/> says what was being done ("Exporting 'm' to '/x'"), for the message.
    /// <paramref name="always"/> runs either way. Returns whether the work completed.
    /// </summary>
    protected bool RunEngine(string activity, object? target, Action work, Action? always = null, bool terminating = false)
    {
        try
        {
            work();
            return true;
        }
        catch (Exception ex) when (ParallelFailures.Unwrap(ex) is OperationCanceledException && _stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (Exception ex) when (ex is not RuntimeException)
        {
            var (record, fatal) = FailureRecords.For(ex, activity, target);
            if (fatal || terminating) ThrowTerminatingError(record);
            WriteError(record);
            return false;
        }
        finally
        {
            always?.Invoke();
        }
    }

    /// <summary>Resolves a user path against the PowerShell location (not the process directory).</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    internal static ErrorCategory Category(ErrorKind kind) => kind switch
    {
        ErrorKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        ErrorKind.InvalidData => ErrorCategory.InvalidData,
        ErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        ErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        ErrorKind.ResourceExists => ErrorCategory.ResourceExists,
        ErrorKind.NotImplemented => ErrorCategory.NotImplemented,
        ErrorKind.WriteError => ErrorCategory.WriteError,
        ErrorKind.ReadError => ErrorCategory.ReadError,
        ErrorKind.OperationStopped => ErrorCategory.OperationStopped,
        _ => ErrorCategory.NotSpecified,
    };
}
