using ModelOptPS.Engine.Data;

namespace ModelOptPS.Engine.Quality;

/// <summary>What text to measure on.</summary>
public sealed record QualityOptions
{
    /// <summary>A text, JSONL or Parquet file; null for the built-in corpus's held-out split (never calibrated on).</summary>
    public string? DatasetPath { get; init; }

    public string? Column { get; init; }

    public SequenceOptions Sequences { get; init; } = new() { NumSamples = 16, SequenceLength = 256 };

    public string Device { get; init; } = "cpu";

    /// <summary>Bound on the logits held at once (both models' [T, V] for a group of sequences).</summary>
    public long LogitsBudgetBytes { get; init; } = 512L << 20;
}
