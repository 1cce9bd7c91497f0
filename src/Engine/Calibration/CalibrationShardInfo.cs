namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// What a shard's calibration wrote, as Invoke-Calibration -ShardIndex outputs it: plain values that survive a job or
/// a remoting session (a model object does not), enough to find the file and tell the shards apart.
/// </summary>
public sealed record CalibrationShardInfo(string Path, string Model, string Recipe, int ShardIndex, int ShardCount, int Sequences, long Tokens,
    TimeSpan Duration, string ModelFingerprint, string PlanFingerprint)
{
    public static CalibrationShardInfo Of(SavedStatistics saved) =>
        new(saved.Path ?? throw new ArgumentException("The statistics are not saved yet.", nameof(saved)), saved.Model, saved.Recipe, saved.Split.ShardIndex, saved.Split.ShardCount, saved.Sequences, saved.Statistics.Tokens,
            saved.Duration, saved.ModelFingerprint, saved.PlanFingerprint);

    public override string ToString() => $"{Model} shard {ShardIndex} of {ShardCount}: {Sequences} sequences, {Tokens} tokens -> {Path}";
}
