using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// YAML to a JSON tree with YAML 1.2 core-schema typing of plain scalars (true/false, null/~, integers, floats);
/// quoted scalars stay strings. One tree shape for both recipe formats, so a YAML recipe and its JSON twin are
/// the same thing after loading.
/// </summary>
internal static class YamlToJson
{
    /// <summary>Every document of a multi-document stream (<c>---</c> separated), in order.</summary>
    public static IReadOnlyList<JsonNode?> ConvertAll(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Select(d => Node(d.RootNode)).ToList();
    }

    private static JsonNode? Node(YamlNode node) => node switch
    {
        YamlMappingNode map => Mapping(map),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(Node).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => null,
    };

    private static JsonObject Mapping(YamlMappingNode map)
    {
        var o = new JsonObject();
        foreach (var (key, value) in map.Children)
            o[((YamlScalarNode)key).Value ?? ""] = Node(value);
        return o;
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        string text = scalar.Value ?? "";
        if (scalar.Style is not YamlDotNet.Core.ScalarStyle.Plain) return JsonValue.Create(text);
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL": return null;
            case "true" or "True" or "TRUE": return JsonValue.Create(true);
            case "false" or "False" or "FALSE": return JsonValue.Create(false);
        }
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) return JsonValue.Create(n);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return JsonValue.Create(d);
        return JsonValue.Create(text);
    }
}
