using System.Management.Automation;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Writes a planned (and, for W4A4, calibrated) model as an NVFP4 checkpoint.</para>
/// <para type="description">Writes the ModelOpt Hugging Face format (or compressed-tensors with -Format
/// CompressedTensors) that vLLM, SGLang and TensorRT-LLM load: packed E2M1 weights, E4M3 block scales, fp32 global
/// scales shared across fused shards, per-expert tensors for MoE models, every other tensor byte for byte,
/// hf_quant_config.json and config.json quantization_config, and the source's other files. Writes into a temporary
/// sibling folder and renames it into place when complete; -Force replaces only a previous export; never writes to
/// the source.</para>
/// </summary>
[Cmdlet(VerbsData.Export, "Nvfp4", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(ExportResult))]
public sealed class ExportNvfp4Command : ModelOptCmdlet
{
    /// <summary>The model from Set-QuantConfig (and Invoke-Calibration for W4A4 plans).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>The output folder. It must not exist or be empty, unless -Force and it is a previous export.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>ModelOpt (default) or CompressedTensors.</summary>
    [Parameter]
    public ExportFormat Format { get; set; } = ExportFormat.ModelOpt;

    /// <summary>Largest shard in bytes (default 10 GB = 10,000,000,000, as transformers and ModelOpt).</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long MaxShardSize { get; set; } = ExportOptions.DefaultMaxShardBytes;

    /// <summary>Global-scale operation order: Cuda (default; matches real ModelOpt checkpoints) or Cpu.</summary>
    [Parameter]
    public GlobalScaleOrder ScaleOrder { get; set; } = GlobalScaleOrder.Cuda;

    /// <summary>Replace a previous export of this tool (never a folder holding anything else).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        string target = ResolvePath(Path);
        var plan = InputObject.Plan;
        string what = plan is null
            ? "NVFP4 checkpoint"
            : $"{Format} NVFP4 checkpoint of {InputObject.Name}: {plan.Summary}";
        if (!ShouldProcess(target, $"Write {what}")) return;

        var options = new ExportOptions { Format = Format, Force = Force, MaxShardBytes = MaxShardSize, Order = ScaleOrder, ProducerVersion = ModuleVersion() };
        var progress = new PipelineProgress<ExportProgress>(this, 1, $"Export-Nvfp4 {InputObject.Name}", (p, record) =>
        {
            record.StatusDescription = $"{p.Stage}: {Display.Bytes(p.BytesWritten)} of {Display.Bytes(p.TotalBytes)}";
            record.CurrentOperation = p.Tensor;
            record.PercentComplete = p.TotalBytes > 0 ? (int)Math.Clamp(100 * p.BytesWritten / p.TotalBytes, 0, 100) : 0;
            return p.TotalBytes > 0 && p.BytesWritten == p.TotalBytes;
        });
        WriteVerbose($"Exporting {InputObject.Name} to '{target}' as {Format} ({options.Order} scale order, shards up to {Display.Bytes(MaxShardSize)}).");
        RunEngine($"Exporting {InputObject.Name} to '{target}'", InputObject, () =>
        {
            var result = CheckpointExporter.Export(InputObject, target, options, progress, StopToken);
            foreach (var warning in result.Warnings) WriteWarning(warning);
            WriteVerbose($"Wrote {result.Files.Count} files, {result.TensorCount} tensors, {Display.Bytes(result.OutputSize)} " +
                         $"({result.SizeRatio:P0} of the source) in {result.Duration.TotalSeconds:F1} s.");
            WriteObject(result);
        }, progress.Complete);
    }

    private string ModuleVersion() => MyInvocation.MyCommand.Module?.Version?.ToString() ?? "0.1.0";
}
