using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>
/// Shared setup of the block tests: each block runs in float32 on tiny random inputs and is compared with its plain-loop
/// double-precision twin in Reference/. Float32 on sums of at most a few hundred terms of magnitude ≤ ~4 loses well under
/// 1e-5 absolute; the tolerances below leave a margin over that and are still 1000× below what a wrong equation gives.
/// </summary>
public abstract class BlockTesting : IDisposable
{
    protected const double Tolerance = 2e-5;

    private readonly DisposeScope _scope;

    protected BlockTesting()
    {
        TorchRuntime.EnsureLoaded();
        _scope = NewDisposeScope();
    }

    protected Random Random { get; } = new(20260806);

    internal static ForwardContext Context(IActivationObserver? observer = null, bool allExperts = false) =>
        new("test", observer, null, allExperts);

    internal static LinearWeights Linear(string module, double[][] weight, double[]? bias = null) =>
        new(module, TensorData.Of(weight), bias is null ? null : TensorData.Of(bias));

    protected static void AssertClose(double[][] expected, Tensor actual, double tolerance = Tolerance)
    {
        double difference = TensorData.MaxDifference(expected, TensorData.Rows(actual));
        Assert.True(difference <= tolerance, $"max difference {difference:E3} > {tolerance:E1}");
    }

    public void Dispose()
    {
        _scope.Dispose();
        GC.SuppressFinalize(this);
    }
}
