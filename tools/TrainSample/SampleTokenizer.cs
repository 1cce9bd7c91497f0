using System.Text.Json.Nodes;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Text;

namespace ModelOptPS.TrainSample;

/// <summary>
/// The sample's tokenizer: a byte-level BPE trained on the corpus's train split, written as a Qwen2-style
/// tokenizer.json with Qwen's three basic special tokens, and a tokenizer_config.json like a Qwen3 base model's.
/// </summary>
internal static class SampleTokenizer
{
    public static readonly string[] SpecialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    public const string EndOfText = "<|endoftext|>";

    public const string ChatTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>Trains on <paramref name="trainTexts"/> so that BPE tokens plus specials fill <paramref name="vocabSize"/> ids.</summary>
    public static BpeModel Train(IEnumerable<string> trainTexts, int vocabSize) =>
        BpeTrainer.Train(trainTexts, vocabSize - SpecialTokens.Length);

    public static void Write(string folder, BpeModel bpe, int maxLength)
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), TokenizerJson.Build(bpe.Vocabulary, bpe.Merges, SpecialTokens));
        var addedTokens = new JsonObject();
        for (int i = 0; i < SpecialTokens.Length; i++)
        {
            addedTokens[(bpe.Vocabulary.Count + i).ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = SpecialTokens[i], ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false,
                ["single_word"] = false, ["special"] = true,
            };
        }
        var config = new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["added_tokens_decoder"] = addedTokens,
            ["additional_special_tokens"] = new JsonArray("<|im_start|>", "<|im_end|>"),
            ["bos_token"] = null,
            ["chat_template"] = ChatTemplate,
            ["clean_up_tokenization_spaces"] = false,
            ["eos_token"] = EndOfText,
            ["errors"] = "replace",
            ["model_max_length"] = maxLength,
            ["pad_token"] = EndOfText,
            ["split_special_tokens"] = false,
            ["tokenizer_class"] = "Qwen2Tokenizer",
            ["unk_token"] = null,
        };
        JsonFiles.Write(Path.Combine(folder, "tokenizer_config.json"), config);
    }

    /// <summary>Loads what <see cref="Write"/> wrote through Hugging Face's tokenizer and checks it encodes losslessly.</summary>
    public static TextTokenizer LoadAndCheck(string folder, IEnumerable<string> texts)
    {
        var tokenizer = TextTokenizer.Load(folder);
        if (tokenizer.EosId is null) throw new InvalidOperationException($"{EndOfText} is not a single token.");
        foreach (string text in texts)
        {
            string normalized = text.Normalize(System.Text.NormalizationForm.FormC);
            if (tokenizer.Decode(tokenizer.Encode(text)) != normalized)
                throw new InvalidOperationException("The trained tokenizer does not round-trip the corpus.");
        }
        return tokenizer;
    }
}
