using System.Management.Automation;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// Shared plumbing for the module's cmdlets: provider-aware path resolution and the one mapping from engine
/// errors to ErrorRecords (the engine's error id, the matching category, the file as target).
/// </summary>
public abstract class ModelOptCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Cancelled by Ctrl+C; the engines check it between tensors, layers and sequences.</summary>
    protected CancellationToken StopToken => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>
    /// Runs engine work: an engine error becomes a non-terminating ErrorRecord about <paramref name="target"/>, a
    /// cancellation by Ctrl+C stops the pipeline, and <paramref name="always"/> runs either way.
    /// </summary>
    protected void RunEngine(object? target, Action work, Action? always = null)
    {
        try
        {
            work();
        }
        catch (ModelOptException ex)
        {
            WriteError(ToErrorRecord(ex, target));
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        finally
        {
            always?.Invoke();
        }
    }

    /// <summary>Resolves a user path against the PowerShell location (not the process directory).</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    protected static ErrorRecord ToErrorRecord(ModelOptException ex, object? target = null) =>
        new(ex, ex.ErrorId, Category(ex.Kind), target ?? ex.Path);

    protected static ErrorCategory Category(ErrorKind kind) => kind switch
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
