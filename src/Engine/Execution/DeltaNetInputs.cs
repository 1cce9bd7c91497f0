using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Gated DeltaNet's input projections, in either checkpoint layout, reduced to one form: the conv input
/// <c>[q | k | v]</c> [T, 2·nk·dk + nv·dv], the output gate z [T, nv, dv], and b, a [T, nv].
/// </summary>
internal interface IDeltaNetProjections
{
    (Tensor Qkv, Tensor Z, Tensor B, Tensor A) Project(ForwardContext context, Tensor x, DeltaNetShape shape);
}

/// <summary>
/// Qwen3-Next: <c>in_proj_qkvz</c> grouped per key head as <c>[q_g (dk) | k_g (dk) | v_g (r·dv) | z_g (r·dv)]</c> and
/// <c>in_proj_ba</c> as <c>[b_g (r) | a_g (r)]</c> (transformers' <c>fix_query_key_value_ordering</c>).
/// </summary>
internal sealed record GroupedDeltaNetProjections(LinearWeights Qkvz, LinearWeights Ba) : IDeltaNetProjections
{
    public (Tensor Qkv, Tensor Z, Tensor B, Tensor A) Project(ForwardContext context, Tensor x, DeltaNetShape shape)
    {
        long length = x.shape[0];
        int r = shape.Ratio;
        context.CheckFinite(x, Qkvz.Site);
        Tensor qkvz = nn.functional.linear(context.Input(Qkvz.Site, x), Qkvz.Weight, Qkvz.Bias)
            .view(length, shape.KeyHeads, 2 * shape.KeyDim + 2 * r * shape.ValueDim);
        Tensor ba = nn.functional.linear(context.Input(Ba.Site, x), Ba.Weight, Ba.Bias).view(length, shape.KeyHeads, 2 * r);
        Tensor[] parts = qkvz.split([shape.KeyDim, shape.KeyDim, r * shape.ValueDim, r * shape.ValueDim], dim: 2);
        Tensor qkv = cat([parts[0].reshape(length, -1), parts[1].reshape(length, -1), parts[2].reshape(length, -1)], -1);
        Tensor z = parts[3].reshape(length, shape.ValueHeads, shape.ValueDim);
        Tensor b = ba.narrow(2, 0, r).reshape(length, shape.ValueHeads);
        Tensor a = ba.narrow(2, r, r).reshape(length, shape.ValueHeads);
        return (qkv, z, b, a);
    }
}

/// <summary>Qwen3.5: separate <c>in_proj_qkv</c> (already <c>[q | k | v]</c>), <c>in_proj_z</c>, <c>in_proj_b</c>, <c>in_proj_a</c>.</summary>
internal sealed record SplitDeltaNetProjections(LinearWeights Qkv, LinearWeights Z, LinearWeights B, LinearWeights A) : IDeltaNetProjections
{
    public (Tensor Qkv, Tensor Z, Tensor B, Tensor A) Project(ForwardContext context, Tensor x, DeltaNetShape shape)
    {
        context.CheckFinite(x, Qkv.Site);
        Tensor Apply(LinearWeights linear) => nn.functional.linear(context.Input(linear.Site, x), linear.Weight, linear.Bias);
        return (Apply(Qkv), Apply(Z).view(x.shape[0], shape.ValueHeads, shape.ValueDim), Apply(B), Apply(A));
    }
}
