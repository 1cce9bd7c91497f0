using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;
using Tokenizers.DotNet;

namespace ModelOptPS.Engine.Data;

/// <summary>
/// A checkpoint's tokenizer: tokenizer.json through Hugging Face's own Rust implementation (Tokenizers.DotNet), so
/// token ids equal transformers'; plus what tokenizer_config.json says about the end-of-text token and chat template.
/// </summary>
public sealed class TextTokenizer : IDisposable
{
    private readonly Tokenizer _tokenizer;

    private TextTokenizer(Tokenizer tokenizer, string path, string? eosToken, string? chatTemplate)
    {
        _tokenizer = tokenizer;
        Path = path;
        EosToken = eosToken;
        ChatTemplate = chatTemplate;
        EosId = eosToken is null ? null : SingleId(eosToken);
    }

    public string Path { get; }

    public string? EosToken { get; }

    /// <summary>Id of the end-of-text token, used to separate packed documents; null when the config names none.</summary>
    public int? EosId { get; }

    /// <summary>The Jinja chat template of tokenizer_config.json, when there is one.</summary>
    public string? ChatTemplate { get; }

    public static TextTokenizer Load(string folder)
    {
        string path = System.IO.Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path))
            throw new ModelOptException("TokenizerNotFound", ErrorKind.ObjectNotFound,
                $"The checkpoint '{folder}' has no tokenizer.json; calibration text cannot be tokenized without it.", path);
        Tokenizer tokenizer;
        try
        {
            tokenizer = new Tokenizer(path);
        }
        catch (Exception ex) when (ex is TokenizerException or DllNotFoundException or BadImageFormatException)
        {
            throw new ModelOptException("TokenizerInvalid", ErrorKind.InvalidData, $"'{path}' cannot be loaded: {ex.Message}", path, ex);
        }
        var config = ReadConfig(System.IO.Path.Combine(folder, "tokenizer_config.json"));
        return new TextTokenizer(tokenizer, path, TokenText(config?["eos_token"]), config?["chat_template"] is JsonValue t ? t.GetValue<string>() : null);
    }

    public int[] Encode(string text) => Array.ConvertAll(_tokenizer.Encode(text), id => (int)id);

    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids.Select(i => (uint)i).ToArray());

    public void Dispose() => _tokenizer.Dispose();

    private int? SingleId(string token)
    {
        var ids = Encode(token);
        return ids.Length == 1 ? ids[0] : null;
    }

    private static JsonObject? ReadConfig(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (System.Text.Json.JsonException ex)
        {
            throw new ModelOptException("TokenizerInvalid", ErrorKind.InvalidData, $"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }
    }

    /// <summary>Special tokens appear as plain strings or as AddedToken objects with a "content" field.</summary>
    private static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o when o["content"] is JsonValue c => c.GetValue<string>(),
        _ => null,
    };
}
