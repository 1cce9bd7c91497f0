using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Tests.Execution.Reference;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>RMSNorm (both styles) and the gated RMSNorm against <see cref="Naive"/>.</summary>
public sealed class NormTests : BlockTesting
{
    [Theory]
    [InlineData(NormStyle.Standard)]
    [InlineData(NormStyle.Offset)]
    public void RmsNorm_MatchesNaive(NormStyle style)
    {
        double[][] x = TensorData.Random(Random, 5, 32, 3.0);
        // Standard weights sit near 1 and offset weights near 0, as in checkpoints; random either way so w and 1+w differ.
        double[] w = TensorData.Random(Random, 32).Select(v => style == NormStyle.Standard ? 1 + v : v).ToArray();
        double[][] expected = Naive.RmsNorm(x, w, 1e-6, style == NormStyle.Offset);
        AssertClose(expected, RmsNorm.Apply(TensorData.Of(x), TensorData.Of(w), 1e-6, style));
    }

    [Fact]
    public void GatedRmsNorm_MatchesNaive()
    {
        double[][] o = TensorData.Random(Random, 6, 16, 2.0), z = TensorData.Random(Random, 6, 16, 3.0);
        double[] w = TensorData.Random(Random, 16).Select(v => 1 + v).ToArray();
        double[][] expected = o.Select((row, t) => Naive.GatedNorm(row, z[t], w, 1e-6)).ToArray();
        AssertClose(expected, GatedRmsNorm.Apply(TensorData.Of(o), TensorData.Of(z), TensorData.Of(w), 1e-6));
    }
}
