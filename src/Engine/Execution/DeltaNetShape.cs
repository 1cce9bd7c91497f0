namespace ModelOptPS.Engine.Execution;

/// <summary>The geometry of a Gated DeltaNet layer: key heads × key dim, value heads × value dim, conv kernel.</summary>
internal sealed record DeltaNetShape(int KeyHeads, int ValueHeads, int KeyDim, int ValueDim, int ConvKernel, double Eps)
{
    /// <summary>Value heads per key head.</summary>
    public int Ratio => ValueHeads / KeyHeads;

    public int KeyWidth => KeyHeads * KeyDim;

    public int ValueWidth => ValueHeads * ValueDim;

    /// <summary>Channels of the causal conv: <c>[q | k | v]</c>.</summary>
    public int ConvChannels => 2 * KeyWidth + ValueWidth;
}
