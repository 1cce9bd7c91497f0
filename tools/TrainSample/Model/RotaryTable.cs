using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>
/// transformers' default RoPE for positions 0..T-1: inv_freq = 1 / θ^(2i/d) in float32, emb = cat(freqs, freqs),
/// applied in the "halves" layout q·cos + rotate_half(q)·sin.
/// </summary>
internal sealed class RotaryTable
{
    private readonly Tensor _cos;
    private readonly Tensor _sin;

    public RotaryTable(long length, int headDim, double theta)
    {
        Tensor exponents = arange(Scalars.Of(0L), Scalars.Of((long)headDim), Scalars.Of(2L), ScalarType.Int64).to(ScalarType.Float32).div(Scalars.Of((long)headDim));
        Tensor inverseFrequencies = full(exponents.shape, Scalars.Of(theta), ScalarType.Float32).pow(exponents).reciprocal();
        Tensor freqs = arange(Scalars.Of(0L), Scalars.Of(length), Scalars.One, ScalarType.Float32).unsqueeze(1).mul(inverseFrequencies.unsqueeze(0));
        Tensor emb = cat([freqs, freqs], -1);
        _cos = emb.cos().DetachFromDisposeScope();
        _sin = emb.sin().DetachFromDisposeScope();
    }

    /// <summary>Rotates x [B, heads, T, D].</summary>
    public Tensor Apply(Tensor x) => x.mul(_cos.to(x.dtype)).add(RotateHalf(x).mul(_sin.to(x.dtype)), Scalars.One);

    private static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    }
}
