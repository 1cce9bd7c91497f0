namespace ModelOptPS.Engine.Execution;

/// <summary>Sequences laid end to end in one [N, H] hidden state: where each starts and how long it is.</summary>
internal sealed class SequenceBatch
{
    public SequenceBatch(IReadOnlyList<long[]> sequences)
    {
        Offsets = new long[sequences.Count];
        Lengths = new long[sequences.Count];
        long offset = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            if (sequences[i].Length == 0) throw new ArgumentException($"Sequence {i} is empty.", nameof(sequences));
            Offsets[i] = offset;
            Lengths[i] = sequences[i].Length;
            offset += sequences[i].Length;
        }
        Tokens = sequences.SelectMany(s => s).ToArray();
    }

    public long[] Offsets { get; }

    public long[] Lengths { get; }

    /// <summary>All token ids, sequence after sequence.</summary>
    public long[] Tokens { get; }

    public int Count => Offsets.Length;

    public long TokenCount => Tokens.LongLength;
}
