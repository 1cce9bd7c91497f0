using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Tests.Execution.Reference;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Gated DeltaNet pieces — causal conv, the recurrence, whole layers in both projection layouts — against <see cref="Naive"/>.</summary>
public sealed class DeltaNetTests : BlockTesting
{
    private const int Hidden = 24, KeyHeads = 2, ValueHeads = 4, KeyDim = 8, ValueDim = 6, Kernel = 4, Length = 11;

    [Fact]
    public void CausalConv1d_MatchesNaive()
    {
        double[][] x = TensorData.Random(Random, Length, 10, 2.0), w = TensorData.Random(Random, 10, Kernel);
        Tensor weight = TensorData.Of(w).view(10, 1, Kernel);
        AssertClose(Naive.CausalConvSilu(x, w), CausalConv1d.Apply(TensorData.Of(x), weight));
    }

    [Fact]
    public void Recurrence_MatchesNaive()
    {
        double[][][] Heads(int dim, double scale) => Enumerable.Range(0, Length).Select(_ => TensorData.Random(Random, ValueHeads, dim, scale)).ToArray();
        double[][][] q = Heads(KeyDim, 2), k = Heads(KeyDim, 2), v = Heads(ValueDim, 3);
        // Decays in (−2, 0] and rates in (0, 1), the ranges the gates produce.
        double[][] g = TensorData.Random(Random, Length, ValueHeads).Select(r => r.Select(x => x - 1).ToArray()).ToArray();
        double[][] beta = TensorData.Random(Random, Length, ValueHeads).Select(r => r.Select(x => (x + 1) / 2).ToArray()).ToArray();

        double[][][] expected = Naive.DeltaRule(q, k, v, g, beta);
        Tensor actual = GatedDeltaRule.Apply(TensorData.Of(q), TensorData.Of(k), TensorData.Of(v), TensorData.Of(g), TensorData.Of(beta));
        AssertClose(expected.Select(t => t.SelectMany(h => h).ToArray()).ToArray(), actual.reshape(Length, ValueHeads * ValueDim));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DeltaNetLayer_MatchesNaive(bool grouped)
    {
        int keys = KeyHeads * KeyDim, values = ValueHeads * ValueDim, channels = 2 * keys + values;
        var naive = new NaiveDeltaNet(KeyHeads, ValueHeads, KeyDim, ValueDim, TensorData.Random(Random, channels, Kernel),
            TensorData.Random(Random, ValueHeads), TensorData.Random(Random, ValueHeads),
            TensorData.Random(Random, ValueDim).Select(v => 1 + v).ToArray(), TensorData.Random(Random, Hidden, values, 0.3), 1e-6);
        naive = grouped
            ? naive with { Qkvz = TensorData.Random(Random, 2 * keys + 2 * values, Hidden, 0.3), Ba = TensorData.Random(Random, 2 * ValueHeads, Hidden, 0.3) }
            : naive with
            {
                Qkv = TensorData.Random(Random, channels, Hidden, 0.3), Z = TensorData.Random(Random, values, Hidden, 0.3),
                B = TensorData.Random(Random, ValueHeads, Hidden, 0.3), A = TensorData.Random(Random, ValueHeads, Hidden, 0.3),
            };
        double[][] x = TensorData.Random(Random, Length, Hidden);

        IDeltaNetProjections inputs = grouped
            ? new GroupedDeltaNetProjections(Linear("l.in_proj_qkvz", naive.Qkvz!), Linear("l.in_proj_ba", naive.Ba!))
            : new SplitDeltaNetProjections(Linear("l.in_proj_qkv", naive.Qkv!), Linear("l.in_proj_z", naive.Z!),
                Linear("l.in_proj_b", naive.B!), Linear("l.in_proj_a", naive.A!));
        var weights = new DeltaNetWeights(inputs, TensorData.Of(naive.Conv).view(channels, 1, Kernel), TensorData.Of(naive.ALog),
            TensorData.Of(naive.DtBias), TensorData.Of(naive.Norm), Linear("l.out_proj", naive.Out));
        var block = new GatedDeltaNetBlock(new DeltaNetShape(KeyHeads, ValueHeads, KeyDim, ValueDim, Kernel, 1e-6), weights);
        AssertClose(NaiveLayers.DeltaNet(x, naive), block.Forward(Context(), TensorData.Of(x)));
    }
}
