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

    public int ByteLength => checked(Rows * Cols * DTypes.SizeOf(DType));

    public bool IsQuantized => Decision.IsQuantized();

    public ReadOnlySpan<byte> Bytes() => Source.File.GetBytes(Source.Info, ByteOffset, ByteLength);

    /// <summary>The module's parent (<c>…self_attn</c>, <c>…mlp</c>, <c>…experts.3</c>).</summary>
    public string Parent => OutputPrefix[..Math.Max(0, OutputPrefix.LastIndexOf('.'))];

    /// <summary>The experts container for expert units (<c>…mlp.experts</c>), else null.</summary>
    public string? ExpertsContainer => Expert is null ? null : Parent[..Parent.LastIndexOf('.')];
}
