using System.Text;
using System.Text.RegularExpressions;

namespace ModelOptPS.Engine.Text;

/// <summary>A trained byte-level BPE: what <see cref="TokenizerJson.Build"/> needs.</summary>
/// <param name="Vocabulary">Byte-level token strings in id order: the 256 byte tokens, then one per merge.</param>
/// <param name="Merges">Merge rules in the order they were learned (their priority when encoding).</param>
public sealed record BpeModel(IReadOnlyList<string> Vocabulary, IReadOnlyList<(string Left, string Right)> Merges);

/// <summary>
/// Trains a byte-level BPE the way GPT-2 and Qwen vocabularies are made: NFC-normalise and split the text with the
/// same regex the tokenizer.json applies (so no merge crosses a pre-token boundary the tokenizer would draw), count
/// each distinct pre-token, and repeatedly merge the most frequent adjacent pair. Ties go to the pair whose ids are
/// smallest, so the same text always gives the same merges.
/// </summary>
/// <remarks>
/// .NET's Regex matches UTF-16 code units, so <c>\p{L}</c> does not match a supplementary-plane letter (its surrogate
/// halves) where the tokenizer's Rust regex does. That only shifts a few pre-token boundaries of rare characters in
/// the statistics; encoding always goes through the tokenizer itself, and any byte sequence stays encodable.
/// </remarks>
public static class BpeTrainer
{
    /// <param name="texts">Training text.</param>
    /// <param name="vocabularySize">Tokens wanted, the 256 bytes included (special tokens not included).</param>
    /// <param name="minPairCount">Stop early when the best pair occurs fewer times than this.</param>
    public static BpeModel Train(IEnumerable<string> texts, int vocabularySize, int minPairCount = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 256);
        var words = new BpePairIndex(CountPreTokens(texts));
        var vocabulary = new List<string>(TokenizerJson.ByteVocabulary());
        var merges = new List<(string, string)>();
        while (vocabulary.Count < vocabularySize && words.MostFrequentPair(minPairCount) is { } pair)
        {
            merges.Add((vocabulary[pair.Left], vocabulary[pair.Right]));
            vocabulary.Add(vocabulary[pair.Left] + vocabulary[pair.Right]);
            words.Merge(pair, vocabulary.Count - 1);
        }
        return new BpeModel(vocabulary, merges);
    }

    /// <summary>Distinct pre-tokens as byte-id sequences, with how often each occurs.</summary>
    private static Dictionary<string, int> CountPreTokens(IEnumerable<string> texts)
    {
        var pattern = new Regex(TokenizerJson.QwenPattern, RegexOptions.CultureInvariant);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string text in texts)
        {
            foreach (Match match in pattern.Matches(text.Normalize(NormalizationForm.FormC)))
                counts[match.Value] = counts.GetValueOrDefault(match.Value) + 1;
        }
        return counts;
    }
}
