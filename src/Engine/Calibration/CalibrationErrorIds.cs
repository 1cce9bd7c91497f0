namespace ModelOptPS.Engine.Calibration;

/// <summary>The stable error ids of calibration.</summary>
public static class CalibrationErrorIds
{
    /// <summary>An observed activation contains NaN or Inf, so no scale can be derived from it.</summary>
    public const string NonFiniteActivation = nameof(NonFiniteActivation);

    /// <summary>nvfp4_act_headroom parameters outside the ranges ModelOpt accepts.</summary>
    public const string InvalidHeadroomSettings = nameof(InvalidHeadroomSettings);

    /// <summary>A shard index outside [0, ShardCount), or a batch that is not whole sequences.</summary>
    public const string InvalidShard = nameof(InvalidShard);

    /// <summary>The sample set has fewer whole batches than shards asked for.</summary>
    public const string TooFewBatchesForShards = nameof(TooFewBatchesForShards);

    /// <summary>GPTQ was asked to calibrate a shard or to merge statistics: its layers depend on all samples in order.</summary>
    public const string GptqStatisticsNotMergeable = nameof(GptqStatisticsNotMergeable);

    /// <summary>A statistics file to read does not exist.</summary>
    public const string StatisticsFileNotFound = nameof(StatisticsFileNotFound);

    /// <summary>A file is not a calibration statistics file of a version this module reads, or is truncated or damaged.</summary>
    public const string StatisticsFileInvalid = nameof(StatisticsFileInvalid);

    /// <summary>A statistics file was calibrated on a different checkpoint than the model it is merged into.</summary>
    public const string StatisticsModelMismatch = nameof(StatisticsModelMismatch);

    /// <summary>A statistics file was calibrated for a different quantization plan than the model's.</summary>
    public const string StatisticsPlanMismatch = nameof(StatisticsPlanMismatch);

    /// <summary>Statistics files to merge come from different sample splits (data, sequences, batch, shard count, options).</summary>
    public const string StatisticsSplitMismatch = nameof(StatisticsSplitMismatch);

    /// <summary>Two statistics files to merge hold the same shard.</summary>
    public const string DuplicateStatisticsShard = nameof(DuplicateStatisticsShard);

    /// <summary>Shards of the split are missing from the files to merge.</summary>
    public const string MissingStatisticsShards = nameof(MissingStatisticsShards);
}
