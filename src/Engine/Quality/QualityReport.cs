namespace ModelOptPS.Engine.Quality;

/// <summary>How much quality the quantized form (NVFP4, FP8, a mix, an FP8 KV cache) costs on held-out text.</summary>
public sealed class QualityReport
{
    public required string Model { get; init; }
    public required string Quantized { get; init; }
    /// <summary>The formats in ModelOpt's terms, e.g. <c>NVFP4</c>, <c>W4A16_NVFP4</c>, <c>MIXED_PRECISION (FP8, W4A16_NVFP4) + FP8 KV</c>.</summary>
    public required string Scheme { get; init; }
    public required string Data { get; init; }
    public required int Sequences { get; init; }

    /// <summary>Next-token predictions compared (tokens minus one per sequence).</summary>
    public required long Positions { get; init; }

    public required double ReferencePerplexity { get; init; }
    public required double QuantizedPerplexity { get; init; }

    /// <summary>Mean KL(reference || quantized) of the next-token distributions, in nats.</summary>
    public required double MeanKl { get; init; }

    /// <summary>Fraction of positions where both models rank the same token first.</summary>
    public required double Top1Agreement { get; init; }

    public required TimeSpan Duration { get; init; }

    /// <summary>Quantized perplexity relative to the reference, minus 1 (0.05 = 5% worse).</summary>
    public double PerplexityIncrease => QuantizedPerplexity / ReferencePerplexity - 1;

    public override string ToString() =>
        $"{Scheme}: perplexity {ReferencePerplexity:F3} -> {QuantizedPerplexity:F3} ({PerplexityIncrease:+0.0%;-0.0%;0.0%}), " +
        $"KL {MeanKl:F4} nats, top-1 agreement {Top1Agreement:P1} over {Positions} tokens";
}
