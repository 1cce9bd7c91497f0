using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Torch;

public sealed class SoftplusTests
{
    [Fact]
    public void IsLogOnePlusExpWithBetaOneAndThresholdTwenty()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        float[] x = [-30f, -5f, -0.5f, 0f, 0.5f, 5f, 19.5f, 20.5f, 40f];
        float[] y = Softplus.Apply(tensor(x)).data<float>().ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            // Above the threshold libtorch passes x through unchanged; below it computes log1p(exp(x)) in float32.
            double expected = x[i] > 20 ? x[i] : Math.Log(1 + Math.Exp(x[i]));
            Assert.Equal(expected, y[i], Math.Abs(expected) * 1e-6 + 1e-12);
        }
        Assert.Equal(40f, y[^1]);
        Assert.Equal(20.5f, y[^2]);
    }
}
