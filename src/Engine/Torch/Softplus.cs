using static TorchSharp.torch;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// <c>softplus(x) = log(1 + exp(x))</c>, passing x through above 20: libtorch's softplus with its defaults (beta 1,
/// threshold 20), element for element. TorchSharp's <c>softplus</c> creates its beta and threshold Scalars inside the
/// call, where the GC may free them mid-operation; here they come from <see cref="Scalars"/>.
/// </summary>
internal static class Softplus
{
    public static Tensor Apply(Tensor x) => where(x.gt(Scalars.Of(20.0)), x, x.exp().log1p());
}
