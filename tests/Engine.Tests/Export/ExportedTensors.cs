using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>Reads tensors of an exported checkpoint for assertions.</summary>
internal static class ExportedTensors
{
    public static byte[] Bytes(CheckpointReader reader, string name) => reader.GetTensor(name).File.ToArray(reader.GetTensor(name).Info);

    /// <summary>A ModelOpt scale: F32, 0-d.</summary>
    public static float Scalar(CheckpointReader reader, string name)
    {
        var t = reader.GetTensor(name);
        Assert.Equal(DType.F32, t.Info.DType);
        Assert.Empty(t.Info.Shape);
        return BitConverter.ToSingle(t.File.ToArray(t.Info));
    }
}
