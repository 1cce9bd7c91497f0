namespace ModelOptPS.Engine.Data;

/// <summary>How much calibration data to build.</summary>
public sealed record SequenceOptions
{
    /// <summary>Sequences to run (ModelOpt's calib_size). 64 keeps a CPU run short and covers experts well.</summary>
    public int NumSamples { get; init; } = 64;

    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 256;

    public int Seed { get; init; } = 1234;
}

/// <summary>
/// Turns documents into fixed-length token sequences: documents in a seeded random order, tokenized, joined with the
/// end-of-text token and cut into <see cref="SequenceOptions.SequenceLength"/> tokens, so no position is padding.
/// The same documents, tokenizer and seed always give the same sequences.
/// </summary>
public static class CalibrationSequences
{
    public static IReadOnlyList<long[]> Build(IEnumerable<CalibrationDocument> documents, TextTokenizer tokenizer, SequenceOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NumSamples, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SequenceLength, 1);
        var shuffled = documents.ToList();
        var random = new Random(options.Seed);
        for (int i = shuffled.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (shuffled[i], shuffled[j]) = (shuffled[j], shuffled[i]);
        }
        var sequences = new List<long[]>();
        var current = new List<long>(options.SequenceLength);
        foreach (var doc in shuffled)
        {
            foreach (int id in tokenizer.Encode(doc.Text).Concat(tokenizer.EosId is { } eos ? [eos] : []))
            {
                current.Add(id);
                if (current.Count < options.SequenceLength) continue;
                sequences.Add([.. current]);
                current.Clear();
                if (sequences.Count == options.NumSamples) return sequences;
            }
        }
        return sequences;
    }
}
