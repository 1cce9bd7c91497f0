using System.Text;

namespace ModelOptPS.Engine.Text;

/// <summary>Two adjacent token ids.</summary>
internal readonly record struct BpePair(int Left, int Right);

/// <summary>
/// The state of BPE training: every distinct pre-token as a sequence of token ids with its frequency, how often each
/// adjacent pair occurs over the whole text, and which pre-tokens contain it, so a merge rewrites only the pre-tokens
/// that hold the pair instead of recounting everything.
/// </summary>
internal sealed class BpePairIndex
{
    private readonly List<int>[] _words;
    private readonly int[] _frequencies;
    private readonly Dictionary<BpePair, long> _pairCounts = [];
    private readonly Dictionary<BpePair, HashSet<int>> _wordsWithPair = [];

    public BpePairIndex(IReadOnlyDictionary<string, int> preTokenCounts)
    {
        // Ordinal order makes the word numbering, and with it everything after, independent of dictionary order.
        var ordered = preTokenCounts.OrderBy(p => p.Key, StringComparer.Ordinal).ToArray();
        _words = ordered.Select(p => Encoding.UTF8.GetBytes(p.Key).Select(b => (int)b).ToList()).ToArray();
        _frequencies = ordered.Select(p => p.Value).ToArray();
        for (int w = 0; w < _words.Length; w++) AddPairs(w);
    }

    /// <summary>The most frequent pair (ties: smallest left id, then smallest right id), or null below <paramref name="minCount"/>.</summary>
    public BpePair? MostFrequentPair(int minCount)
    {
        BpePair? best = null;
        long bestCount = 0;
        foreach (var (pair, count) in _pairCounts)
        {
            if (count < minCount) continue;
            if (best is not { } b || count > bestCount || count == bestCount && (pair.Left, pair.Right).CompareTo((b.Left, b.Right)) < 0)
            {
                best = pair;
                bestCount = count;
            }
        }
        return best;
    }

    /// <summary>Replaces every occurrence of <paramref name="pair"/> (left to right, as the tokenizer applies merges) by <paramref name="merged"/>.</summary>
    public void Merge(BpePair pair, int merged)
    {
        foreach (int w in _wordsWithPair[pair].ToArray())
        {
            RemovePairs(w);
            var word = _words[w];
            var rewritten = new List<int>(word.Count);
            for (int i = 0; i < word.Count; i++)
            {
                bool match = i + 1 < word.Count && word[i] == pair.Left && word[i + 1] == pair.Right;
                rewritten.Add(match ? merged : word[i]);
                if (match) i++;
            }
            _words[w] = rewritten;
            AddPairs(w);
        }
    }

    private void AddPairs(int w)
    {
        var word = _words[w];
        for (int i = 0; i + 1 < word.Count; i++)
        {
            var pair = new BpePair(word[i], word[i + 1]);
            _pairCounts[pair] = _pairCounts.GetValueOrDefault(pair) + _frequencies[w];
            if (!_wordsWithPair.TryGetValue(pair, out var holders)) _wordsWithPair[pair] = holders = [];
            holders.Add(w);
        }
    }

    private void RemovePairs(int w)
    {
        var word = _words[w];
        for (int i = 0; i + 1 < word.Count; i++)
        {
            var pair = new BpePair(word[i], word[i + 1]);
            long left = _pairCounts[pair] - _frequencies[w];
            if (left == 0) _pairCounts.Remove(pair);
            else _pairCounts[pair] = left;
            if (_wordsWithPair.TryGetValue(pair, out var holders) && holders.Remove(w) && holders.Count == 0) _wordsWithPair.Remove(pair);
        }
    }
}
