namespace ModelOptPS.Engine.Execution;

/// <summary>
/// How many bytes of weights a runner holds in torch tensors, now and at most: the proof that a layer-by-layer run
/// keeps one layer's weights alive at a time.
/// </summary>
public sealed class WeightMemory
{
    /// <summary>Bytes of materialised weights alive now.</summary>
    public long LiveBytes { get; private set; }

    /// <summary>The most bytes of weights alive at once since the runner was created.</summary>
    public long PeakBytes { get; private set; }

    /// <summary>How many times a decoder layer's weights were materialised.</summary>
    public int LayersMaterialized { get; private set; }

    internal void Add(long bytes)
    {
        LiveBytes += bytes;
        PeakBytes = Math.Max(PeakBytes, LiveBytes);
    }

    internal void Remove(long bytes) => LiveBytes -= bytes;

    internal void CountLayer() => LayersMaterialized++;
}
