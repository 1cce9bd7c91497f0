using System.Text.Json;
using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Text;

/// <summary>
/// Writes a Hugging Face tokenizer.json for a byte-level BPE (the Qwen2 family's layout: Split on Qwen's
/// pre-tokenization regex, then ByteLevel without its own regex; ByteLevel decoder; special tokens as added tokens),
/// which transformers, vLLM and Tokenizers.DotNet load as they load Qwen's own.
/// </summary>
public static class TokenizerJson
{
    /// <summary>Qwen2/Qwen3's pre-tokenization pattern (shared/reference/architectures.md §6.1).</summary>
    public const string QwenPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <param name="vocab">Byte-level token strings in id order: the 256 byte tokens first, then merged tokens.</param>
    /// <param name="merges">Merge rules in priority order, as pairs of byte-level strings.</param>
    /// <param name="specialTokens">Special tokens, given ids after the vocabulary.</param>
    public static string Build(IReadOnlyList<string> vocab, IReadOnlyList<(string Left, string Right)> merges, IReadOnlyList<string> specialTokens)
    {
        var vocabObject = new JsonObject();
        for (int i = 0; i < vocab.Count; i++) vocabObject[vocab[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < specialTokens.Count; i++)
        {
            added.Add(new JsonObject
            {
                ["id"] = vocab.Count + i, ["content"] = specialTokens[i], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = QwenPattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocabObject,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m.Left, m.Right)).ToArray()),
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    /// <summary>The 256 single-byte tokens, id = byte value.</summary>
    public static IReadOnlyList<string> ByteVocabulary() => Enumerable.Range(0, 256).Select(b => ByteLevel.Char((byte)b).ToString()).ToList();
}
