namespace ModelOptPS.Engine.Execution;

/// <summary>Where a <see cref="ModelRunner.RunLayerwise"/> call is: reported after the embedding and after each layer.</summary>
/// <param name="LayersDone">Decoder layers finished so far.</param>
/// <param name="LayerCount">Decoder layers in the model.</param>
/// <param name="Tokens">Tokens in the run (all sequences).</param>
/// <param name="Elapsed">Time since the run started.</param>
public readonly record struct RunnerProgress(int LayersDone, int LayerCount, long Tokens, TimeSpan Elapsed)
{
    public double PercentComplete => LayerCount == 0 ? 100 : 100.0 * LayersDone / LayerCount;

    /// <summary>Estimated time left, from the mean time per layer so far; null before the first layer.</summary>
    public TimeSpan? Remaining => LayersDone == 0 ? null : Elapsed / LayersDone * (LayerCount - LayersDone);
}
