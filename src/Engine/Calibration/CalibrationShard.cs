using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// One of <see cref="Count"/> parts of a calibration's sample set: a contiguous range of whole batches. The runner runs
/// the feed-forward over the concatenated tokens in chunks of one batch, so a shard that starts on a batch boundary
/// sees exactly the chunks a single run sees, and its statistics are those chunks' statistics bit for bit.
/// </summary>
public sealed record CalibrationShard(int Index, int Count)
{
    /// <summary>The whole set (a single run).</summary>
    public static CalibrationShard Whole { get; } = new(0, 1);

    /// <summary>Refuses an index outside [0, Count).</summary>
    public CalibrationShard Validated()
    {
        if (Count < 1 || Index < 0 || Index >= Count)
            throw new ModelOptException(CalibrationErrorIds.InvalidShard, ErrorKind.InvalidArgument,
                $"Shard {Index} of {Count} does not exist: -ShardCount must be at least 1 and -ShardIndex between 0 and ShardCount - 1.");
        return this;
    }

    /// <summary>
    /// The first sequence and the number of sequences of this shard among <paramref name="sequences"/>, split in
    /// batches of <paramref name="sequencesPerBatch"/>: shard i gets batches [i·B/n, (i+1)·B/n).
    /// </summary>
    public (int Start, int Length) Range(int sequences, int sequencesPerBatch)
    {
        Validated();
        int batches = (sequences + sequencesPerBatch - 1) / sequencesPerBatch;
        if (batches < Count)
            throw new ModelOptException(CalibrationErrorIds.TooFewBatchesForShards, ErrorKind.InvalidArgument,
                $"{sequences} calibration sequences in batches of {sequencesPerBatch} are {batches} batch(es), fewer than the {Count} shards asked for; " +
                "every shard needs at least one whole batch: use fewer shards, a smaller -BatchSize or more -NumSamples.");
        int first = (int)((long)Index * batches / Count), last = (int)((long)(Index + 1) * batches / Count);
        int start = first * sequencesPerBatch;
        return (start, Math.Min(last * sequencesPerBatch, sequences) - start);
    }

    public override string ToString() => $"shard {Index} of {Count}";
}
