using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Tests.Execution.Reference;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Causal GQA attention and whole attention layers (biases, q/k norms, output gate, partial RoPE) against <see cref="NaiveLayers.Attention"/>.</summary>
public sealed class AttentionTests : BlockTesting
{
    private const int Hidden = 24, Heads = 4, KvHeads = 2, HeadDim = 8, Length = 7;

    [Theory]
    [InlineData(4, 4, null)]
    [InlineData(4, 2, null)]
    [InlineData(4, 1, null)]
    [InlineData(4, 2, 3)]
    public void CausalAttention_MatchesNaive(int heads, int kvHeads, int? window)
    {
        double[][] q = TensorData.Random(Random, Length, heads * HeadDim, 2.0);
        double[][] k = TensorData.Random(Random, Length, kvHeads * HeadDim, 2.0);
        double[][] v = TensorData.Random(Random, Length, kvHeads * HeadDim);
        double[][] expected = Naive.Attention(q, k, v, heads, kvHeads, HeadDim, window);
        Tensor actual = CausalAttention.Apply(
            TensorData.Of(q).view(Length, heads, HeadDim), TensorData.Of(k).view(Length, kvHeads, HeadDim),
            TensorData.Of(v).view(Length, kvHeads, HeadDim), window);
        AssertClose(expected, actual);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gated")]
    public void AttentionLayer_MatchesNaive(string variant)
    {
        bool gated = variant == "gated", qkNorm = variant is "qwen3" or "gated", bias = variant == "qwen2";
        double partial = gated ? 0.5 : 1.0;
        double[] inv = Naive.InverseFrequencies(1e6, (int)(HeadDim * partial)).Select(f => (double)(float)f).ToArray();
        var naive = new NaiveAttention(
            TensorData.Random(Random, (gated ? 2 : 1) * Heads * HeadDim, Hidden, 0.3), TensorData.Random(Random, KvHeads * HeadDim, Hidden, 0.3),
            TensorData.Random(Random, KvHeads * HeadDim, Hidden, 0.3), TensorData.Random(Random, Hidden, Heads * HeadDim, 0.3),
            Heads, KvHeads, HeadDim, inv, Gated: gated, Offset: gated,
            QNorm: qkNorm ? TensorData.Random(Random, HeadDim, 0.5) : null, KNorm: qkNorm ? TensorData.Random(Random, HeadDim, 0.5) : null,
            QBias: bias ? TensorData.Random(Random, Heads * HeadDim) : null, KBias: bias ? TensorData.Random(Random, KvHeads * HeadDim) : null,
            VBias: bias ? TensorData.Random(Random, KvHeads * HeadDim) : null);
        double[][] x = TensorData.Random(Random, Length, Hidden);

        var weights = new AttentionWeights(
            Linear("a.q_proj", naive.Q, naive.QBias), Linear("a.k_proj", naive.K, naive.KBias),
            Linear("a.v_proj", naive.V, naive.VBias), Linear("a.o_proj", naive.O),
            naive.QNorm is null ? null : TensorData.Of(naive.QNorm), naive.KNorm is null ? null : TensorData.Of(naive.KNorm));
        var shape = new AttentionShape(Heads, KvHeads, HeadDim, gated, gated ? NormStyle.Offset : NormStyle.Standard, 1e-6, null);
        var block = new AttentionBlock(shape, weights, new KvCacheSite("a"), new RotaryEmbedding(inv.Select(f => (float)f).ToArray()));
        AssertClose(NaiveLayers.Attention(x, naive), block.Forward(Context(), TensorData.Of(x)));
    }
}
