using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// One 2-D weight as it is written: a Linear's weight, or one expert's gate, up or down half cut out of a fused
/// 3-D tensor. <see cref="OutputPrefix"/> is the module name it is exported under (<c>…experts.3.gate_proj</c>);
/// the bytes are the contiguous rows <c>[ByteOffset, ByteOffset + Rows·Cols·size)</c> of the source tensor.
/// </summary>
public sealed record WeightUnit(
    string OutputPrefix, ModelModule Module, TensorRef Source, long ByteOffset, int Rows, int Cols,
    QuantDecision Decision, string Role, int? Expert, string? InputQuantizer)
{
    public DType DType => Source.Info.DType;

    /// <summary>Bytes of the weight; above 2 GiB for the largest lm_heads, which are copied in pieces.</summary>
    public long ByteLength => (long)Rows * Cols * DTypes.SizeOf(DType);

    public bool IsQuantized => Decision.IsQuantized();

    /// <summary>The weight's bytes as one span (the quantization kernels take spans of at most 2 GiB).</summary>
    public MappedBytes Read() => ByteLength <= int.MaxValue
        ? Source.File.Read(Source.Info, ByteOffset, (int)ByteLength)
        : throw new ModelOptPS.Engine.Errors.ModelOptException("TensorTooLargeToQuantize", ModelOptPS.Engine.Errors.ErrorKind.NotImplemented,
            $"'{OutputPrefix}.weight' is {ByteLength} bytes; NVFP4 quantization handles weights up to 2 GiB. Exclude it (-Exclude '{OutputPrefix}').",
            Source.File.Path);

    /// <summary>The module's parent (<c>…self_attn</c>, <c>…mlp</c>, <c>…experts.3</c>).</summary>
    public string Parent => OutputPrefix[..Math.Max(0, OutputPrefix.LastIndexOf('.'))];

    /// <summary>The experts container for expert units (<c>…mlp.experts</c>), else null.</summary>
    public string? ExpertsContainer => Expert is null ? null : Parent[..Parent.LastIndexOf('.')];
}
