using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Gated DeltaNet's output norm (Qwen3NextRMSNormGated): <c>(w · cast(rmsnorm(o))) · silu(z)</c>, norm over the value
/// head dim, plain weight (not offset), gate in float32, result cast back.
/// </summary>
internal static class GatedRmsNorm
{
    public static Tensor Apply(Tensor o, Tensor z, Tensor weight, double eps)
    {
        Tensor normed = weight.mul(RmsNorm.Normalize(o, eps).to(o.dtype));
        return normed.mul(z.to(ScalarType.Float32).silu()).to(o.dtype);
    }
}
