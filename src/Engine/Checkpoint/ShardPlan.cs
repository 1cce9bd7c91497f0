using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Checkpoint;

/// <summary>
/// How tensors are split into shard files: in the given order, a new shard starts when the next tensor would push
/// the current one past the limit (a tensor larger than the limit gets a shard of its own), as transformers does.
/// </summary>
public sealed class ShardPlan
{
    /// <summary>transformers' and ModelOpt's default: 10 GB (decimal).</summary>
    public const long DefaultMaxShardBytes = 10L * 1000 * 1000 * 1000;

    public ShardPlan(IReadOnlyList<TensorSpec> tensors, long maxShardBytes = DefaultMaxShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        var shards = new List<List<TensorSpec>>();
        var current = new List<TensorSpec>();
        long size = 0;
        foreach (var t in tensors)
        {
            if (current.Count > 0 && size + t.ByteLength > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                size = 0;
            }
            current.Add(t);
            size += t.ByteLength;
        }
        if (current.Count > 0 || shards.Count == 0) shards.Add(current);
        Shards = shards;
        TotalSize = tensors.Sum(t => t.ByteLength);
    }

    public IReadOnlyList<IReadOnlyList<TensorSpec>> Shards { get; }

    /// <summary>Sum of tensor bytes (the index's <c>metadata.total_size</c>).</summary>
    public long TotalSize { get; }

    /// <summary>File name of shard <paramref name="i"/>: <c>model.safetensors</c> alone, else the numbered form.</summary>
    public string FileName(int i) =>
        Shards.Count == 1 ? "model.safetensors" : $"model-{i + 1:D5}-of-{Shards.Count:D5}.safetensors";

    /// <summary>The index JSON: total tensor bytes and a weight map sorted by tensor name.</summary>
    public string BuildIndexJson()
    {
        var weightMap = new JsonObject();
        var entries = Shards.SelectMany((shard, i) => shard.Select(t => (t.Name, File: FileName(i))));
        foreach (var (name, file) in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
            weightMap[name] = file;
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = TotalSize },
            ["weight_map"] = weightMap,
        };
        return index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}
