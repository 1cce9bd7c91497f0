using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>
/// q/k/v (and gate/up) are observed one after another with the same input tensor: the collector reduces it once and the
/// three quantizers share one accumulator, whose numbers are those of reducing the input for each of them; a Linear
/// that reads another tensor keeps its own.
/// </summary>
public sealed class SharedInputStatisticsTests
{
    [Fact]
    public void LinearsReadingOneTensorShareOneReduction()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var first = rand([8, 32], ScalarType.Float32).mul(Scalars.Of(3));
        var second = rand([8, 32], ScalarType.Float32).mul(Scalars.Of(2));
        var other = rand([8, 32], ScalarType.Float32).mul(Scalars.Of(9));
        using var shared = new StatisticsCollector(new Dictionary<string, int>(), collectHessians: true);
        using var alone = new StatisticsCollector(new Dictionary<string, int>(), collectHessians: true);
        string[] projections = ["q_proj", "k_proj", "v_proj"];
        foreach (var batch in new[] { first, second })
        {
            foreach (var p in projections) shared.ObserveLinearInput(Site(p), batch);
            shared.ObserveLinearInput(Site("o_proj"), other);
            alone.ObserveLinearInput(Site("q_proj"), batch);
        }

        Assert.Same(shared.Histograms["attn.q_proj.input_quantizer"], shared.Histograms["attn.v_proj.input_quantizer"]);
        Assert.NotSame(shared.Histograms["attn.q_proj.input_quantizer"], shared.Histograms["attn.o_proj.input_quantizer"]);
        var blocks = shared.HessianBlocks();
        var reference = alone.HessianBlocks()["attn.q_proj"];
        foreach (var p in projections)
        {
            Assert.Equal(reference.Tokens, blocks[$"attn.{p}"].Tokens); // each batch counted once, not once per Linear
            Assert.Equal(reference.Blocks, blocks[$"attn.{p}"].Blocks);
            Assert.Equal(alone.InputAmax["attn.q_proj.input_quantizer"], shared.InputAmax[$"attn.{p}.input_quantizer"]);
        }
        Assert.Equal(other.abs().max().item<float>(), shared.InputAmax["attn.o_proj.input_quantizer"]);
    }

    private static LinearSite Site(string projection) => new($"attn.{projection}", $"attn.{projection}.input_quantizer", $"attn.{projection}");
}
