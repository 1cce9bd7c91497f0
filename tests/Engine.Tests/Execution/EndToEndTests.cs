using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Tests.Execution.Reference;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>
/// Logits of every generated family (and a dense Qwen3.5 derived from the MoE one) against <see cref="NaiveModel"/>: a
/// double-precision plain-loop run of the same checkpoint, written independently of the engine from
/// shared/reference/architectures.md and checked line by line against transformers' modeling code (Reference/Naive.cs
/// names the functions). The comparison is sensitive: deleting the DeltaNet decay, the top-k renormalisation, or
/// rotating whole heads instead of the partial-RoPE slice moves the logits by 2e-2 to 2.5e-1 of their scale, against the
/// ~3e-7 agreement measured here.
/// </summary>
public sealed class EndToEndTests(GeneratedModels models, ITestOutputHelper output) : IClassFixture<GeneratedModels>
{
    private static readonly long[] Tokens = [3, 141, 59, 26, 255, 0, 97, 97];

    /// <summary>
    /// Tolerance: the engine runs in float32 (unit roundoff 6e-8) on exactly the same bf16 weights. Each dot product sums
    /// at most 256 terms, a few hundred roundings pile up over ≤ 4 layers, the recurrence and the softmaxes, so the error
    /// relative to the largest logit stays far below 1e-4 (measured: ~1e-6); a wrong equation (a missing bias, a norm
    /// weight read as w instead of 1+w, a head mis-split) moves logits by 1e-2 or more of that scale.
    /// </summary>
    private const double RelativeTolerance = 1e-4;

    [Theory]
    [MemberData(nameof(GeneratedModels.Families), MemberType = typeof(GeneratedModels))]
    public void Logits_MatchTheNaiveReference(string family)
    {
        using var model = models.Import(family);
        AssertLogitsMatch(family, model);
    }

    [Fact]
    public void DenseQwen3_5_LogitsMatchTheNaiveReference()
    {
        using var folder = new TempFolder();
        using var model = ModelImporter.Import(DenseQwen3_5.Recipe().Write(folder.Path));
        Assert.Equal("Qwen3_5", model.Family);
        AssertLogitsMatch("qwen3_5", model);
    }

    private void AssertLogitsMatch(string family, HFModel model)
    {
        TorchRuntime.EnsureLoaded();
        var naive = new NaiveModel(model.Checkpoint);
        double[][] expected = naive.Logits(Tokens);
        // A routing decision closer than float32 can resolve would make the comparison meaningless, not wrong.
        Assert.True(naive.SmallestRoutingMargin > 1e-5, $"top-k margin {naive.SmallestRoutingMargin:E2} is too close to call");

        using var runner = ModelRunner.Create(model);
        using var scope = NewDisposeScope();
        double[][] actual = TensorData.Rows(runner.Forward(Tokens));

        double scale = TensorData.MaxAbs(expected);
        double difference = TensorData.MaxDifference(expected, actual);
        output.WriteLine($"{family}: max |logit| {scale:E3}, max difference {difference:E3} ({difference / scale:E2} relative)");
        Assert.True(difference <= RelativeTolerance * scale, $"{family}: logits differ by {difference:E3} (scale {scale:E3})");
    }
}
