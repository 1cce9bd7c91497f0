using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Fixtures;

/// <summary>How a generated tensor is filled.</summary>
public enum Fill
{
    /// <summary>Weight-like values: roughly normal, std 0.02, deterministic per tensor name and seed.</summary>
    Random,

    /// <summary>All ones (standard RMSNorm weights).</summary>
    Ones,

    /// <summary>All zeros (offset RMSNorm weights, biases).</summary>
    Zeros,
}

/// <summary>
/// Fills rows <paramref name="firstRow"/>… of a generated tensor seen as a matrix [elements / last dim, last dim]:
/// <paramref name="destination"/> holds a whole number of rows in the tensor's dtype.
/// </summary>
public delegate void RowFill(FixtureTensor tensor, long firstRow, Span<byte> destination);

/// <summary>A generated tensor: name, shape, dtype and fill.</summary>
public sealed record FixtureTensor(string Name, long[] Shape, Fill Fill, DType DType = DType.BF16);

/// <summary>
/// A synthetic checkpoint in a family's exact on-disk naming: config.json plus tensors. Values are generated
/// deterministically from the seed and each tensor's name, so any subset, order or sharding gives the same bytes.
/// </summary>
public sealed class CheckpointRecipe
{
    private readonly List<FixtureTensor> _tensors = [];

    public CheckpointRecipe(string family, JsonObject config)
    {
        Family = family;
        Config = config;
    }

    public string Family { get; }

    public JsonObject Config { get; }

    public IReadOnlyList<FixtureTensor> Tensors => _tensors;

    public CheckpointRecipe Add(string name, long[] shape, Fill fill = Fill.Random, DType dtype = DType.BF16)
    {
        _tensors.Add(new FixtureTensor(name, shape, fill, dtype));
        return this;
    }

    /// <summary>Writes config.json, the shards (and index when more than one) and a tokenizer_config.json.</summary>
    public string Write(string folder, int seed = 1234, long maxShardBytes = ShardPlan.DefaultMaxShardBytes) =>
        WriteTensors(folder, maxShardBytes, (tensor, spec, writer) =>
        {
            var buffer = new byte[1 << 16];
            var values = new TensorValues(tensor, seed);
            long remaining = spec.ByteLength;
            while (remaining > 0)
            {
                int n = (int)Math.Min(remaining, buffer.Length);
                values.Next(buffer.AsSpan(0, n));
                writer.Append(buffer.AsSpan(0, n));
                remaining -= n;
            }
        });

    /// <summary>
    /// Writes the checkpoint like <see cref="Write(string, int, long)"/>, with the values <paramref name="fill"/> makes:
    /// each tensor as a matrix of rows of its last dimension, in chunks of whole rows (about
    /// <paramref name="chunkBytes"/>), so a generator can fill a chunk's rows in parallel.
    /// </summary>
    public string Write(string folder, RowFill fill, long maxShardBytes, int chunkBytes = 64 << 20) =>
        WriteTensors(folder, maxShardBytes, (tensor, spec, writer) =>
        {
            long rowBytes = spec.Shape.Length == 0 ? spec.ByteLength : spec.Shape[^1] * DTypes.SizeOf(spec.DType);
            long rows = rowBytes == 0 ? 0 : spec.ByteLength / rowBytes;
            long rowsPerChunk = Math.Max(1, chunkBytes / Math.Max(1, rowBytes));
            var buffer = new byte[Math.Min(rows, rowsPerChunk) * rowBytes];
            for (long row = 0; row < rows; row += rowsPerChunk)
            {
                var chunk = buffer.AsSpan(0, (int)(Math.Min(rowsPerChunk, rows - row) * rowBytes));
                fill(tensor, row, chunk);
                writer.Append(chunk);
            }
        });

    private string WriteTensors(string folder, long maxShardBytes, Action<FixtureTensor, TensorSpec, CheckpointWriter> writeTensor)
    {
        Directory.CreateDirectory(folder);
        WriteConfig(folder);
        var specs = _tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => new TensorSpec(t.Name, t.DType, t.Shape)).ToList();
        var byName = _tensors.ToDictionary(t => t.Name);
        using (var writer = new CheckpointWriter(folder, specs, maxShardBytes))
        {
            foreach (var spec in specs)
                writeTensor(byName[spec.Name], spec, writer);
            writer.Complete();
        }
        return folder;
    }

    /// <summary>
    /// Writes a checkpoint whose data section is a sparse hole: real headers, no data written. Used to show that
    /// importing a multi-GB checkpoint reads only headers (the data would read as zeros).
    /// </summary>
    public string WriteSparse(string folder, long maxShardBytes = ShardPlan.DefaultMaxShardBytes)
    {
        Directory.CreateDirectory(folder);
        WriteConfig(folder);
        var specs = _tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => new TensorSpec(t.Name, t.DType, t.Shape)).ToList();
        var plan = new ShardPlan(specs, maxShardBytes);
        for (int i = 0; i < plan.Shards.Count; i++)
        {
            var header = SafetensorsWriter.BuildHeader(plan.Shards[i], new Dictionary<string, string> { ["format"] = "pt" });
            using var file = new FileStream(Path.Combine(folder, plan.FileName(i)), FileMode.CreateNew);
            file.Write(BitConverter.GetBytes((ulong)header.Length));
            file.Write(header);
            file.SetLength(8 + header.Length + plan.Shards[i].Sum(t => t.ByteLength));
        }
        if (plan.Shards.Count > 1)
            File.WriteAllText(Path.Combine(folder, CheckpointWriter.IndexFileName), plan.BuildIndexJson());
        return folder;
    }

    private void WriteConfig(string folder)
    {
        File.WriteAllText(Path.Combine(folder, "config.json"), Config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        FixtureTokenizer.Write(folder);
    }
}
