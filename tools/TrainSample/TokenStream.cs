using ModelOptPS.Engine.Data;

namespace ModelOptPS.TrainSample;

/// <summary>
/// One split of the corpus as a single token stream: each document's ids (from the Hugging Face tokenizer, so they
/// are the ids transformers would produce) followed by &lt;|endoftext|&gt;, documents in corpus order.
/// </summary>
internal sealed class TokenStream
{
    private TokenStream(long[] tokens) => Tokens = tokens;

    public long[] Tokens { get; }

    public static TokenStream From(IEnumerable<CalibrationDocument> documents, TextTokenizer tokenizer)
    {
        int eos = tokenizer.EosId ?? throw new InvalidOperationException("The tokenizer has no end-of-text token.");
        var tokens = new List<long>();
        foreach (var doc in documents)
        {
            tokens.AddRange(tokenizer.Encode(doc.Text).Select(id => (long)id));
            tokens.Add(eos);
        }
        return new TokenStream([.. tokens]);
    }

    /// <summary>
    /// Windows of <paramref name="length"/> + 1 tokens (inputs and their next-token targets) starting at
    /// <paramref name="offset"/>, each sharing its last token with the next window's first, so every token after the
    /// offset is predicted exactly once.
    /// </summary>
    public List<long[]> Windows(int length, int offset = 0)
    {
        var windows = new List<long[]>();
        for (int start = offset; start + length + 1 <= Tokens.Length; start += length)
            windows.Add(Tokens.AsSpan(start, length + 1).ToArray());
        return windows;
    }
}
