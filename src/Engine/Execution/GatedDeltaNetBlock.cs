using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>The weights of a Gated DeltaNet layer besides its input projections.</summary>
internal sealed record DeltaNetWeights(IDeltaNetProjections Inputs, Tensor Conv, Tensor ALog, Tensor DtBias, Tensor Norm, LinearWeights Out);

/// <summary>
/// Gated DeltaNet linear attention over one sequence (architectures.md §4.3): projections, causal conv + SiLU over
/// <c>[q | k | v]</c>, gates <c>β = sigmoid(b)</c> and <c>g = −exp(A_log) · softplus(a + dt_bias)</c> (float32), the
/// gated delta rule, the gated RMSNorm with <c>silu(z)</c>, out_proj.
/// </summary>
internal sealed class GatedDeltaNetBlock(DeltaNetShape shape, DeltaNetWeights weights) : ISequenceMixer
{
    public Tensor Forward(ForwardContext context, Tensor x)
    {
        long length = x.shape[0];
        var (qkv, z, b, a) = weights.Inputs.Project(context, x, shape);
        Tensor mixed = CausalConv1d.Apply(qkv, weights.Conv);
        Tensor[] parts = mixed.split([shape.KeyWidth, shape.KeyWidth, shape.ValueWidth], dim: 1);
        Tensor q = parts[0].reshape(length, shape.KeyHeads, shape.KeyDim);
        Tensor k = parts[1].reshape(length, shape.KeyHeads, shape.KeyDim);
        Tensor v = parts[2].reshape(length, shape.ValueHeads, shape.ValueDim);
        if (shape.Ratio > 1)
        {
            q = q.repeat_interleave(shape.Ratio, dim: 1);
            k = k.repeat_interleave(shape.Ratio, dim: 1);
        }

        Tensor beta = b.sigmoid();
        Tensor g = weights.ALog.to(ScalarType.Float32).exp().neg()
            .mul(Softplus.Apply(a.to(ScalarType.Float32).add(weights.DtBias.to(ScalarType.Float32), Scalars.One)));
        Tensor core = GatedDeltaRule.Apply(q, k, v, g, beta).to(x.dtype);

        Tensor y = GatedRmsNorm.Apply(core, z, weights.Norm, shape.Eps);
        return context.Linear(weights.Out, y.reshape(length, shape.ValueWidth));
    }
}
