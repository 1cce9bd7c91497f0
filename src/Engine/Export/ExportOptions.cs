using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Export;

/// <summary>The on-disk layout to write.</summary>
public enum ExportFormat
{
    /// <summary>ModelOpt's HF format: <c>weight</c>, <c>weight_scale</c>, <c>weight_scale_2</c>, <c>input_scale</c>, hf_quant_config.json.</summary>
    ModelOpt,

    /// <summary>compressed-tensors <c>nvfp4-pack-quantized</c>: <c>weight_packed</c> and reciprocal global scales.</summary>
    CompressedTensors,
}

public sealed record ExportOptions
{
    public ExportFormat Format { get; init; } = ExportFormat.ModelOpt;

    /// <summary>Replace a non-empty target folder, when it is a previous export of this tool.</summary>
    public bool Force { get; init; }

    public const long DefaultMaxShardBytes = ShardPlan.DefaultMaxShardBytes;

    public long MaxShardBytes { get; init; } = DefaultMaxShardBytes;

    /// <summary>Operation order of the global scales (CUDA order matches real ModelOpt checkpoints).</summary>
    public GlobalScaleOrder Order { get; init; } = GlobalScaleOrder.Cuda;

    /// <summary>The <c>producer.version</c> written into the config files.</summary>
    public string ProducerVersion { get; init; } = "0.1.0";

    /// <summary>Called at each point where the export changed the file system (the fault-injection tests stop there).</summary>
    internal Action<ExportStep>? StepReached { get; init; }
}

/// <summary>Progress of an export, for Write-Progress.</summary>
public readonly record struct ExportProgress(string Stage, string Tensor, long BytesWritten, long TotalBytes);
