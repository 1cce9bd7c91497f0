using System.Diagnostics;
using System.Management.Automation;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Checks that a folder is an NVFP4 checkpoint vLLM, SGLang and TensorRT-LLM load, and with
/// -Reference that it encodes its source.</para>
/// <para type="description">Checks a ModelOpt or compressed-tensors NVFP4 checkpoint against the contract: config
/// files, index and shards, every module's tensors (dtype, shape, valid scales), the scales fused layers and expert sets
/// must share, and the exclusion list in both directions. With -Reference it also compares every unquantized tensor
/// with the source byte for byte, dequantizes every NVFP4 weight against NVFP4's error bound (naming swapped nibbles,
/// transposed scales, swapped shards or experts), and reports each module's relative RMS error and SQNR. Writes one
/// object per module and per checkpoint-level check (Status Pass, Warn or Fail, with the reason), then a summary; with
/// -Quiet, only $true or $false. A failing checkpoint is a result, not an error: only a folder that does not exist or
/// an unreadable reference writes an error. An Export-Nvfp4 result piped in supplies both -Path and -Reference.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "QuantFormat")]
[OutputType(typeof(ModuleCheck), typeof(VerificationReport), typeof(bool))]
public sealed class TestQuantFormatCommand : ModelOptCmdlet
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(200);
    private readonly CancellationTokenSource _stop = new();

    /// <summary>The checkpoint folder. Accepts strings, DirectoryInfo and Export-Nvfp4 results from the pipeline.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The source checkpoint it was exported from (an Export-Nvfp4 result's SourcePath binds here).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("SourcePath")]
    public string? Reference { get; set; }

    /// <summary>Return only $true (no check failed) or $false, for runbooks and Pester.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        string folder = ResolvePath(Path);
        string? reference = string.IsNullOrEmpty(Reference) ? null : ResolvePath(Reference);
        var progress = new ProgressRecord(1, $"Test-QuantFormat {folder}", "Reading the checkpoint");
        var clock = Stopwatch.StartNew();
        var options = new VerifyOptions
        {
            Log = WriteVerbose,
            CancellationToken = _stop.Token,
            Progress = new Reporter(p =>
            {
                if (clock.Elapsed < ProgressInterval && p.Done < p.Total) return;
                clock.Restart();
                progress.StatusDescription = $"Module {p.Done} of {p.Total}";
                progress.CurrentOperation = p.Module;
                progress.PercentComplete = (int)(100L * p.Done / p.Total);
                WriteProgress(progress);
            }),
        };
        VerificationReport report;
        try
        {
            report = QuantFormatVerifier.Verify(folder, reference, options);
        }
        catch (ModelOptException ex)
        {
            WriteError(ToErrorRecord(ex, folder));
            if (Quiet) WriteObject(false);
            return;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
        WriteVerbose(report.Summary);
        if (Quiet)
        {
            WriteObject(report.Passed);
            return;
        }
        foreach (var check in report.Checks) WriteObject(check);
        WriteObject(report);
    }

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>Reports on the calling thread (the verifier reports from the pipeline thread, where Write-Progress is allowed).</summary>
    private sealed class Reporter(Action<VerificationProgress> report) : IProgress<VerificationProgress>
    {
        public void Report(VerificationProgress value) => report(value);
    }
}
