using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>One tensor of the output: its header entry and how its bytes are produced when its turn comes.</summary>
public sealed record OutputTensor(TensorSpec Spec, Action<CheckpointWriter> Write)
{
    public string Name => Spec.Name;

    /// <summary>Copies a source tensor (or a slice of one) in bounded pieces, so tensors of any size stream through.</summary>
    public static OutputTensor Copy(string name, TensorRef source, long offset, long length, long[] shape) =>
        new(new TensorSpec(name, source.Info.DType, shape), writer =>
        {
            const int piece = 64 << 20;
            for (long done = 0; done < length; done += piece)
            {
                using var bytes = source.File.Read(source.Info, offset + done, (int)Math.Min(piece, length - done));
                writer.Append(bytes.Span);
            }
        });

    public static OutputTensor CopyWhole(TensorRef source) =>
        Copy(source.Name, source, 0, source.Info.ByteLength, source.Info.Shape);

    /// <summary>A 0-d (ModelOpt) or [1]-shaped (compressed-tensors) fp32 scalar.</summary>
    public static OutputTensor Scalar(string name, float value, bool oneElementVector) =>
        new(new TensorSpec(name, DType.F32, oneElementVector ? [1] : []), writer =>
            writer.WriteTensor(name, BitConverter.GetBytes(value)));
}
