using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Tests.Execution.Reference;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>
/// Routing and the grouped-by-expert dispatch against <see cref="Naive.Moe"/>, which loops over tokens and runs each
/// token's k experts one by one (the dispatch the engine must never use, and the one that is obviously right).
/// </summary>
public sealed class MoeTests : BlockTesting
{
    private const int Hidden = 16, Intermediate = 12, Experts = 6, Tokens = 23;

    [Theory]
    [InlineData(2, true, false)]
    [InlineData(2, false, false)]
    [InlineData(3, true, true)]
    public void MoeBlock_MatchesPerTokenLoop(int topK, bool renormalize, bool shared)
    {
        var naive = RandomMoe(topK, renormalize, shared);
        double[][] x = TensorData.Random(Random, Tokens, Hidden);
        double[][] expected = x.Select(row => Naive.Moe(row, naive)).ToArray();
        AssertClose(expected, Block(naive, fused: true).Forward(Context(), TensorData.Of(x)));
    }

    [Fact]
    public void Router_TakesTopKOfFloat32Softmax()
    {
        double[][] logits = TensorData.Random(Random, Tokens, Experts, 3.0);
        var (weights, indices) = TopKRouter.Route(TensorData.Of(logits), 2, renormalize: true);
        long[] actual = indices.data<long>().ToArray();
        for (int t = 0; t < Tokens; t++)
        {
            var (w, e) = Naive.Route(logits[t], 2, renormalize: true);
            Assert.Equal(e.Select(i => (long)i), actual[(2 * t)..(2 * t + 2)]);
            for (int j = 0; j < 2; j++) Assert.InRange(weights[t][j].item<float>() - w[j], -1e-6, 1e-6);
        }
        Assert.Equal(ScalarType.Float32, weights.dtype);
    }

    [Fact]
    public void PerExpertNames_GiveTheSameOutputAsFused()
    {
        var naive = RandomMoe(2, true, false);
        Tensor x = TensorData.Of(TensorData.Random(Random, Tokens, Hidden));
        Tensor fused = Block(naive, fused: true).Forward(Context(), x);
        Tensor perExpert = Block(naive, fused: false).Forward(Context(), x);
        Assert.Equal(0.0, perExpert.sub(fused).abs().max().item<float>(), 6);
    }

    [Fact]
    public void AllExperts_RunsEveryExpertOnEveryToken_OutputUnchanged()
    {
        var naive = RandomMoe(2, true, true);
        Tensor x = TensorData.Of(TensorData.Random(Random, Tokens, Hidden));
        var routedOnly = new RecordingObserver();
        var all = new RecordingObserver();
        Tensor expected = Block(naive, fused: false).Forward(Context(routedOnly), x);
        Tensor actual = Block(naive, fused: false).Forward(Context(all, allExperts: true), x);

        Assert.Equal(0.0, actual.sub(expected).abs().max().item<float>(), 6);
        for (int e = 0; e < Experts; e++)
        {
            Assert.Equal(Tokens, all.Rows($"m.experts.{e}.gate_proj.input_quantizer"));
            Assert.Equal(Tokens, all.Rows($"m.experts.{e}.down_proj.input_quantizer"));
        }
        long routed = Enumerable.Range(0, Experts).Sum(e => routedOnly.Rows($"m.experts.{e}.up_proj.input_quantizer"));
        Assert.Equal(Tokens * 2, routed);
    }

    private Moe RandomMoe(int topK, bool renormalize, bool shared)
    {
        double[][][] Stack(int rows, int columns) => Enumerable.Range(0, Experts).Select(_ => TensorData.Random(Random, rows, columns, 0.4)).ToArray();
        var moe = new Moe(TensorData.Random(Random, Experts, Hidden, 0.8), Stack(Intermediate, Hidden), Stack(Intermediate, Hidden),
            Stack(Hidden, Intermediate), topK, renormalize);
        return shared
            ? moe with
            {
                Shared = (TensorData.Random(Random, Intermediate, Hidden, 0.4), TensorData.Random(Random, Intermediate, Hidden, 0.4),
                    TensorData.Random(Random, Hidden, Intermediate, 0.4)),
                SharedGate = TensorData.Random(Random, 1, Hidden),
            }
            : moe;
    }

    private static MoeBlock Block(Moe naive, bool fused)
    {
        Tensor gateUp = cat([TensorData.Of(naive.Gate), TensorData.Of(naive.Up)], 1);
        var sites = fused ? ExpertSites.ForFused("m.experts") : new ExpertSites("m.experts", false, "gate_proj", "up_proj", "down_proj");
        var experts = new ExpertWeights(gateUp, TensorData.Of(naive.Down), sites);
        SharedExpertWeights? shared = naive.Shared is { } s
            ? new SharedExpertWeights(new MlpWeights(Linear("m.shared_expert.gate_proj", s.Gate), Linear("m.shared_expert.up_proj", s.Up),
                Linear("m.shared_expert.down_proj", s.Down)), Linear("m.shared_expert_gate", naive.SharedGate!))
            : null;
        return new MoeBlock(new MoeWeights(Linear("m.gate", naive.Router), experts, shared, naive.TopK, naive.Renormalize));
    }
}
