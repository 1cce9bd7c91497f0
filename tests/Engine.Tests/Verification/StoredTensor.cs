using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>A tensor held in memory for writing or editing a small test checkpoint.</summary>
internal sealed record StoredTensor(string Name, DType DType, long[] Shape, byte[] Data)
{
    public string Shard { get; init; } = "";

    public TensorSpec Spec => new(Name, DType, Shape);

    /// <summary>Writes tensors (sorted by name) as a sharded checkpoint with its index.</summary>
    public static void WriteCheckpoint(string folder, IEnumerable<StoredTensor> tensors, long maxShardBytes)
    {
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        using var writer = new CheckpointWriter(folder, sorted.Select(t => t.Spec).ToList(), maxShardBytes);
        foreach (var t in sorted) writer.WriteTensor(t.Name, t.Data);
        writer.Complete();
    }
}
