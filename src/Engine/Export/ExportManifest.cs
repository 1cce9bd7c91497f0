using System.Text.Json;
using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// <c>.modeloptps-export.json</c>, written last into every export: each file the export wrote, with its size. It is
/// how a later export recognises a folder as one of ours, the only kind -Force may replace: the folder must hold
/// exactly the listed files at their listed sizes and nothing else, so a user's own file (or a file the user edited)
/// is never deleted. A dot name: the engines, tokenizers and Test-QuantFormat skip it, and an export never copies it
/// from a source.
/// </summary>
internal sealed class ExportManifest
{
    public const string FileName = ".modeloptps-export.json";

    private const string Producer = "ModelOptPS";

    private readonly Dictionary<string, long> _sizes;

    private ExportManifest(Dictionary<string, long> sizes, string? weightAlgorithm)
    {
        _sizes = sizes;
        WeightAlgorithm = weightAlgorithm;
    }

    /// <summary>
    /// How the NVFP4 weights were quantized (<c>Max</c>, <c>MseFp8Sweep</c>, <c>Gptq</c>, …), or null when the export has
    /// none or predates the field. The verifier accepts codes that are not the rounding of the source (GPTQ's) only when
    /// this says Gptq or says nothing, so a corrupted code in any other export of this tool cannot pass as GPTQ's.
    /// </summary>
    public string? WeightAlgorithm { get; }

    /// <summary>Lists <paramref name="files"/> (relative to <paramref name="folder"/>) with their sizes on disk.</summary>
    public static void Write(string folder, IEnumerable<string> files, string? weightAlgorithm = null)
    {
        var list = new JsonObject();
        foreach (var file in files.Select(Normalize).Order(StringComparer.Ordinal))
            list[file] = new FileInfo(Path.Combine(folder, file)).Length;
        var root = new JsonObject { ["producer"] = Producer, ["files"] = list };
        if (weightAlgorithm is not null) root["weight_algorithm"] = weightAlgorithm;
        using var stream = new FileStream(Path.Combine(folder, FileName), FileMode.CreateNew, FileAccess.Write);
        JsonSerializer.Serialize(stream, root, new JsonSerializerOptions { WriteIndented = true });
        stream.Flush(flushToDisk: true);
    }

    /// <summary>The folder's manifest, or null when it has none or it is not one of ours.</summary>
    public static ExportManifest? TryRead(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            if (JsonNode.Parse(File.ReadAllText(path)) is not JsonObject root || root["producer"] is not JsonValue producer
                || !producer.TryGetValue<string>(out var name) || name != Producer || root["files"] is not JsonObject files)
                return null;
            var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var (file, size) in files)
            {
                if (size is not JsonValue value || !value.TryGetValue<long>(out long bytes)) return null;
                sizes[file] = bytes;
            }
            string? algorithm = root["weight_algorithm"] is JsonValue a && a.TryGetValue<string>(out var text) ? text : null;
            return new ExportManifest(sizes, algorithm);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            return null; // unreadable: not a manifest this tool can vouch for
        }
    }

    /// <summary>
    /// What in <paramref name="folder"/> the export did not write as it is now: files and folders it does not list,
    /// listed files whose size changed, and links. Empty when the folder is exactly the export.
    /// </summary>
    public IReadOnlyList<string> Unexpected(string folder)
    {
        var found = new List<string>();
        var listedFolders = _sizes.Keys.SelectMany(ParentsOf).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            string relative = Normalize(Path.GetRelativePath(folder, entry.FullName));
            if (entry.LinkTarget is not null)
                found.Add(relative + " (a link)");
            else if (entry is DirectoryInfo)
            {
                if (!listedFolders.Contains(relative)) found.Add(relative + "/");
            }
            else if (relative == FileName)
                continue;
            else if (!_sizes.TryGetValue(relative, out long size))
                found.Add(relative);
            else if (((FileInfo)entry).Length != size)
                found.Add(relative + " (changed since the export)");
        }
        return found.Order(StringComparer.Ordinal).ToList();
    }

    private static string Normalize(string relative) => relative.Replace(Path.DirectorySeparatorChar, '/');

    private static IEnumerable<string> ParentsOf(string file)
    {
        for (int slash = file.LastIndexOf('/'); slash > 0; slash = file.LastIndexOf('/', slash - 1))
            yield return file[..slash];
    }
}
