using System.Text.Json;
using System.Text.Json.Nodes;

namespace ModelOptPS.TrainSample;

/// <summary>How the sample's JSON files are written: indented, like transformers' save_pretrained.</summary>
internal static class JsonFiles
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Write(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(Indented) + "\n");
}
