using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Checkpoint;

/// <summary>
/// A checkpoint's config.json. Keeps the whole JSON (export writes it back with only quantization_config added)
/// and reads the fields the engine needs from the text model's section: multimodal wrappers nest it under
/// <c>text_config</c>; rope settings may be top-level (<c>rope_theta</c>) or in v5's <c>rope_parameters</c>.
/// </summary>
public sealed class ModelConfig
{
    public const string FileName = "config.json";

    private ModelConfig(string path, JsonObject root)
    {
        Path = path;
        Root = root;
        Text = root["text_config"] as JsonObject ?? root;
    }

    public string Path { get; }

    /// <summary>The whole config as read.</summary>
    public JsonObject Root { get; }

    /// <summary>The text model's section (<c>text_config</c> when present, else the root).</summary>
    public JsonObject Text { get; }

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelOptException(ErrorIds.ConfigNotFound, ErrorKind.ObjectNotFound,
                $"The checkpoint folder '{System.IO.Path.GetDirectoryName(path)}' has no config.json; a Hugging Face checkpoint needs one to say what model it holds.", path);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new ModelOptException(ErrorIds.ConfigInvalid, ErrorKind.InvalidData,
                $"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }
        if (node is not JsonObject root)
            throw new ModelOptException(ErrorIds.ConfigInvalid, ErrorKind.InvalidData, $"'{path}' is not a JSON object.", path);
        if (root["text_config"] is { } tc && tc is not JsonObject)
            throw new ModelOptException(ErrorIds.ConfigInvalid, ErrorKind.InvalidData, $"'{path}': text_config is not an object.", path);
        return new ModelConfig(path, root);
    }

    /// <summary>First entry of <c>architectures</c>, or null when the key is missing, null or empty.</summary>
    public string? Architecture =>
        Root["architectures"] is JsonArray { Count: > 0 } list && list[0] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    public string? ModelType => GetString(Root, "model_type");

    public string? TextModelType => GetString(Text, "model_type");

    public int? HiddenSize => GetInt("hidden_size");
    public int? LayerCount => GetInt("num_hidden_layers");
    public int? AttentionHeads => GetInt("num_attention_heads");
    public int? KeyValueHeads => GetInt("num_key_value_heads");
    public int? VocabSize => GetInt("vocab_size");
    public int? ExpertsPerToken => GetInt("num_experts_per_tok");

    /// <summary>Routed experts per MoE layer: <c>num_experts</c> (Qwen) or <c>num_local_experts</c> (Mixtral).</summary>
    public int? ExpertCount => GetInt("num_experts") ?? GetInt("num_local_experts") ?? GetInt("n_routed_experts");

    /// <summary><c>head_dim</c> when given, else hidden / heads.</summary>
    public int? HeadDim => GetInt("head_dim") ?? (HiddenSize / AttentionHeads);

    public double? RmsNormEps => GetDouble(Text, "rms_norm_eps");

    public bool TieWordEmbeddings => GetBool(Text, "tie_word_embeddings") ?? GetBool(Root, "tie_word_embeddings") ?? false;

    /// <summary>RoPE base: <c>rope_parameters.rope_theta</c> (v5) or top-level <c>rope_theta</c> (legacy).</summary>
    public double? RopeTheta => GetDouble(RopeParameters, "rope_theta") ?? GetDouble(Text, "rope_theta");

    /// <summary>Fraction of head_dim that is rotated (Qwen3-Next, Qwen3.5); 1 when absent.</summary>
    public double PartialRotaryFactor =>
        GetDouble(RopeParameters, "partial_rotary_factor") ?? GetDouble(Text, "partial_rotary_factor") ?? 1.0;

    /// <summary>The rope parameter dict in either layout (<c>rope_parameters</c> or legacy <c>rope_scaling</c>).</summary>
    public JsonObject? RopeParameters => Text["rope_parameters"] as JsonObject ?? Text["rope_scaling"] as JsonObject;

    /// <summary>Per-layer type list (<c>full_attention</c> / <c>linear_attention</c>) when the config spells it out.</summary>
    public IReadOnlyList<string>? LayerTypes =>
        Text["layer_types"] is JsonArray a ? a.Select(n => n?.GetValue<string>() ?? "").ToList() : null;

    public int? FullAttentionInterval => GetInt("full_attention_interval");

    /// <summary>An integer field of the text model's section.</summary>
    public int? GetInt(string key) => GetInt(Text, key);

    public static int? GetInt(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.TryGetValue(out long n) && n is >= int.MinValue and <= int.MaxValue ? (int)n : null;

    public static double? GetDouble(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.TryGetValue(out double d) ? d : null;

    public static string? GetString(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    public static bool? GetBool(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.TryGetValue(out bool b) ? b : null;
}
