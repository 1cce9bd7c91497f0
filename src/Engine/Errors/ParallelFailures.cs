using System.Runtime.ExceptionServices;

namespace ModelOptPS.Engine.Errors;

/// <summary>
/// Parallel loops wrap whatever their bodies throw in an <see cref="AggregateException"/>; a user must see the engine's
/// own error (e.g. <c>NonFiniteWeight</c>) or the cancellation, not the wrapper. The one place that unwraps, for the
/// engine's loops and for the cmdlet layer.
/// </summary>
public static class ParallelFailures
{
    /// <summary>Runs a parallel loop; rethrows the first engine error or cancellation of its bodies with its own stack.</summary>
    public static void Run(Action loop)
    {
        try
        {
            loop();
        }
        catch (AggregateException ex)
        {
            if (Reportable(ex) is not { } inner) throw;
            ExceptionDispatchInfo.Throw(inner);
        }
    }

    /// <summary>
    /// The exception a user should see: for an <see cref="AggregateException"/> (nested ones too) the first
    /// <see cref="ModelOptException"/>, else the first cancellation, else the first inner exception; otherwise itself.
    /// </summary>
    public static Exception Unwrap(Exception ex) =>
        ex is AggregateException aggregate ? Reportable(aggregate) ?? aggregate.Flatten().InnerExceptions.FirstOrDefault() ?? ex : ex;

    private static Exception? Reportable(AggregateException ex)
    {
        var all = ex.Flatten().InnerExceptions;
        return all.FirstOrDefault(e => e is ModelOptException) ?? all.FirstOrDefault(e => e is OperationCanceledException);
    }
}
