namespace ModelOptPS.TrainSample;

/// <summary>Every choice that shapes the trained weights; recorded in training.json.</summary>
internal sealed record TrainingSettings
{
    public int Seed { get; init; } = 1234;
    /// <summary>
    /// One libtorch thread: on a shared 2-core machine, two OpenMP threads stall at every parallel region whenever another
    /// process takes a core (measured 10-30x slower steps); one thread is steady, and its sums come out bit-identical run to run.
    /// </summary>
    public int Threads { get; init; } = 1;
    public int SequenceLength { get; init; } = 256;
    public int BatchSize { get; init; } = 8;
    public int Steps { get; init; } = 800;
    public int WarmupSteps { get; init; } = 50;
    public double PeakLearningRate { get; init; } = 2e-3;
    /// <summary>Cosine decay ends at this fraction of the peak.</summary>
    public double FinalLearningRateFraction { get; init; } = 0.1;
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double AdamEpsilon { get; init; } = 1e-8;
    public double GradientClipNorm { get; init; } = 1.0;
    public int LogEvery { get; init; } = 10;
    /// <summary>Held-out loss is printed this often (for the log only: nothing is chosen by it).</summary>
    public int EvaluateEvery { get; init; } = 100;

    /// <summary>Linear warm-up to the peak, then cosine decay to the final fraction at the last step.</summary>
    public double LearningRate(int step)
    {
        if (step < WarmupSteps) return PeakLearningRate * (step + 1) / WarmupSteps;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, Steps - 1 - WarmupSteps);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress)));
        return PeakLearningRate * (FinalLearningRateFraction + (1 - FinalLearningRateFraction) * cosine);
    }
}
