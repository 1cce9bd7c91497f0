using System.Text.Json.Nodes;
using ModelOptPS.Engine.Text;

namespace ModelOptPS.Fixtures;

/// <summary>
/// The generated checkpoints' tokenizer: byte-level BPE without merges (one token per byte, ids 0-255) plus the
/// Qwen special tokens, and a tokenizer_config.json with a ChatML chat template, so calibration can run on them.
/// </summary>
public static class FixtureTokenizer
{
    public static readonly string[] SpecialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    public const string ChatTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";

    public static void Write(string folder)
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), TokenizerJson.Build(TokenizerJson.ByteVocabulary(), [], SpecialTokens));
        var config = new JsonObject
        {
            ["model_max_length"] = 4096,
            ["eos_token"] = "<|endoftext|>",
            ["pad_token"] = "<|endoftext|>",
            ["chat_template"] = ChatTemplate,
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString() + "\n");
    }
}
