using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Checkpoint;

/// <summary><c>model.safetensors.index.json</c>: which shard file holds each tensor.</summary>
public sealed class CheckpointIndex
{
    private CheckpointIndex(string path, IReadOnlyDictionary<string, string> weightMap, long? totalSize)
    {
        Path = path;
        WeightMap = weightMap;
        TotalSize = totalSize;
    }

    public string Path { get; }

    /// <summary>Tensor name to shard file name (relative to the folder).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    public long? TotalSize { get; }

    public IEnumerable<string> ShardFiles => WeightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);

    public static CheckpointIndex Load(string path)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw Invalid(path, $"is not valid JSON: {ex.Message}", ex);
        }
        if (node is not JsonObject root || root["weight_map"] is not JsonObject map)
            throw Invalid(path, "has no \"weight_map\" object");
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in map)
        {
            if (value is not JsonValue v || !v.TryGetValue(out string? file) || string.IsNullOrEmpty(file))
                throw Invalid(path, $"maps tensor '{name}' to something that is not a file name");
            if (file.Contains('/') || file.Contains('\\') || file is "." or "..")
                throw Invalid(path, $"maps tensor '{name}' to '{file}', which is not a plain file name in the checkpoint folder");
            weightMap[name] = file;
        }
        long? totalSize = root["metadata"] is JsonObject meta && meta["total_size"] is JsonValue t && t.TryGetValue(out long size) ? size : null;
        return new CheckpointIndex(path, weightMap, totalSize);
    }

    private static ModelOptException Invalid(string path, string what, Exception? inner = null) =>
        new(ErrorIds.IndexInvalid, ErrorKind.InvalidData, $"The shard index '{path}' {what}.", path, inner);
}
