using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The -Reference checks of the export's non-weight files (checkpoint-contract.md, "Files in the output folder"):
/// config.json is the source's plus <c>quantization_config</c> (and a filled-in <c>architectures</c> where the source's
/// was null); every other non-weight file of the source is copied unchanged.
/// </summary>
internal static class SourceFiles
{
    private static readonly HashSet<string> WeightExtensions =
        new([".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack"], StringComparer.OrdinalIgnoreCase);

    private static readonly HashSet<string> RewrittenFiles =
        [ModelConfig.FileName, QuantConfigCheck.HfQuantConfigFileName, CheckpointWriter.IndexFileName];

    public static void Compare(ReferenceMap source, CheckpointInventory export, CheckList checks)
    {
        if (export.Config is { } config) CompareConfig(source.Config, config, checks.Get(CheckScope.Config, ModelConfig.FileName));
        foreach (var path in Directory.EnumerateFiles(source.Folder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith('.') || RewrittenFiles.Contains(name) || WeightExtensions.Contains(Path.GetExtension(name))
                || name.EndsWith(".index.json", StringComparison.Ordinal))
                continue;
            var check = checks.Get(CheckScope.File, name);
            check.Expected = "copied unchanged from the source";
            string copy = Path.Combine(export.Folder, name);
            if (!File.Exists(copy))
            {
                check.Found = "absent";
                check.Fail(VerificationIds.SourceFileMissing, $"The source's '{name}' was not copied; the engines and tokenizers need every non-weight file.");
            }
            else if (!SameBytes(path, copy))
            {
                check.Found = "different";
                check.Fail(VerificationIds.SourceFileModified, $"'{name}' differs from the source's; non-weight files are copied unchanged.");
            }
            else
            {
                check.Found = "identical";
                check.Note = "identical to the source";
            }
        }
    }

    private static void CompareConfig(ModelConfig source, ModelConfig export, CheckBuilder check)
    {
        var changed = new List<string>();
        foreach (var key in source.Root.Select(kv => kv.Key).Union(export.Root.Select(kv => kv.Key)))
        {
            if (key == "quantization_config") continue;
            if (key == "architectures" && source.Architecture is null) continue; // filled in on export; checked on its own
            if (!JsonNode.DeepEquals(source.Root[key], export.Root[key]) || source.Root.ContainsKey(key) != export.Root.ContainsKey(key))
                changed.Add(key);
        }
        if (changed.Count > 0)
            check.Fail(VerificationIds.ConfigChanged,
                $"config.json differs from the source's in {Text.List(changed)}; an export only adds quantization_config (and fills in a null architectures).");
        else
            check.Note += "; the source's config plus quantization_config";
    }

    private static bool SameBytes(string a, string b)
    {
        using var x = File.OpenRead(a);
        using var y = File.OpenRead(b);
        if (x.Length != y.Length) return false;
        var bufferX = new byte[1 << 16];
        var bufferY = new byte[1 << 16];
        int read;
        while ((read = x.ReadAtLeast(bufferX, bufferX.Length, throwOnEndOfStream: false)) > 0)
        {
            y.ReadExactly(bufferY, 0, read);
            if (!bufferX.AsSpan(0, read).SequenceEqual(bufferY.AsSpan(0, read))) return false;
        }
        return true;
    }
}
