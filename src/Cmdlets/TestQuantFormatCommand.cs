using System.Management.Automation;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Checks that a folder is an NVFP4, FP8 or mixed-precision checkpoint vLLM, SGLang and TensorRT-LLM load, and with
/// -Reference that it encodes its source.</para>
/// <para type="description">Checks a ModelOpt or compressed-tensors NVFP4 checkpoint, or a ModelOpt FP8 or MIXED_PRECISION one with its FP8 KV cache, against the contract: config
/// files, index and shards, every module's tensors (dtype, shape, valid scales), the precision and scales the shards
/// of each merged layer (vLLM's packed_modules_mapping, per family) and the experts of a layer must share, and the
/// exclusion list in both directions. With -Reference it also compares every unquantized tensor
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
        var progress = new PipelineProgress<VerificationProgress>(this, 3, $"Test-QuantFormat {folder}", (p, record) =>
        {
            record.StatusDescription = $"Module {p.Done} of {p.Total}";
            record.CurrentOperation = p.Module;
            record.PercentComplete = p.Total > 0 ? (int)(100L * p.Done / p.Total) : 0;
            return p.Done == p.Total;
        });
        var options = new VerifyOptions { Log = WriteVerbose, CancellationToken = StopToken, Progress = progress };
        VerificationReport? report = null;
        string activity = reference is null ? $"Verifying '{folder}'" : $"Verifying '{folder}' against '{reference}'";
        if (!RunEngine(activity, folder, () => report = QuantFormatVerifier.Verify(folder, reference, options), progress.Complete))
        {
            if (Quiet) WriteObject(false);
            return;
        }
        WriteVerbose(report!.Summary);
        if (Quiet)
        {
            WriteObject(report.Passed);
            return;
        }
        foreach (var check in report.Checks) WriteObject(check);
        WriteObject(report);
    }

}
