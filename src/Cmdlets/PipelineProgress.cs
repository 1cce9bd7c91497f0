using System.Diagnostics;
using System.Management.Automation;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// Write-Progress from an engine's IProgress callbacks. The engines report synchronously on the pipeline thread (the
/// only thread allowed to write to the pipeline), so this writes directly; it throttles to four updates a second but
/// always shows the last step.
/// </summary>
internal sealed class PipelineProgress<T> : IProgress<T>
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly Cmdlet _cmdlet;
    private readonly ProgressRecord _record;
    private readonly Func<T, ProgressRecord, bool> _describe;
    private readonly Stopwatch _sinceLast = new();

    /// <param name="describe">Fills the record from a report and returns true for the final one.</param>
    public PipelineProgress(Cmdlet cmdlet, int activityId, string activity, Func<T, ProgressRecord, bool> describe)
    {
        _cmdlet = cmdlet;
        _record = new ProgressRecord(activityId, activity, "Starting");
        _describe = describe;
    }

    public void Report(T value)
    {
        bool final = _describe(value, _record);
        if (!final && _sinceLast.IsRunning && _sinceLast.Elapsed < Interval) return;
        _sinceLast.Restart();
        _cmdlet.WriteProgress(_record);
    }

    /// <summary>Removes the progress bar.</summary>
    public void Complete()
    {
        _record.RecordType = ProgressRecordType.Completed;
        _cmdlet.WriteProgress(_record);
    }
}
