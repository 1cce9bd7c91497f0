using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>The weights of a softmax-attention layer; q/k norms only in the Qwen3 family, biases only where the checkpoint has them.</summary>
internal sealed record AttentionWeights(LinearWeights Q, LinearWeights K, LinearWeights V, LinearWeights O, Tensor? QNorm, Tensor? KNorm);

/// <summary>
/// GQA softmax attention over one sequence (architectures.md §1.4, §4.2): q/k/v projections (one shared input), the
/// output gate split off q_proj, per-head q/k RMSNorm before RoPE, the KV cache (keys and values as cached, observed and
/// possibly fake-quantized at <paramref name="cache"/>), causal attention, gate, o_proj.
/// </summary>
internal sealed class AttentionBlock(AttentionShape shape, AttentionWeights weights, KvCacheSite cache, RotaryEmbedding rope) : ISequenceMixer
{
    public Tensor Forward(ForwardContext context, Tensor x)
    {
        long length = x.shape[0];
        context.CheckFinite(x, weights.Q.Site);
        Tensor q = Project(context, weights.Q, x);
        Tensor k = Project(context, weights.K, x).view(length, shape.KvHeads, shape.HeadDim);
        Tensor v = Project(context, weights.V, x).view(length, shape.KvHeads, shape.HeadDim);

        Tensor? gate = null;
        if (shape.OutputGate)
        {
            Tensor both = q.view(length, shape.Heads, 2 * shape.HeadDim);
            q = both.narrow(-1, 0, shape.HeadDim);
            gate = both.narrow(-1, shape.HeadDim, shape.HeadDim).reshape(length, shape.Heads * shape.HeadDim);
        }
        else
        {
            q = q.view(length, shape.Heads, shape.HeadDim);
        }

        if (weights.QNorm is not null) q = RmsNorm.Apply(q, weights.QNorm, shape.Eps, shape.QkNormStyle);
        if (weights.KNorm is not null) k = RmsNorm.Apply(k, weights.KNorm, shape.Eps, shape.QkNormStyle);
        var (cos, sin) = rope.Table(length, x.dtype, x.device);
        q = rope.Apply(q, cos, sin);
        k = context.Quantizer(cache.KeyQuantizer, rope.Apply(k, cos, sin));
        v = context.Quantizer(cache.ValueQuantizer, v);

        Tensor output = CausalAttention.Apply(q, k, v, shape.SlidingWindow);
        if (gate is not null) output = output.mul(gate.sigmoid());
        return context.Linear(weights.O, output);
    }

    private static Tensor Project(ForwardContext context, LinearWeights linear, Tensor x) =>
        nn.functional.linear(context.Input(linear.Site, x), linear.Weight, linear.Bias);
}
