using ModelOptPS.Engine.Torch;
using ModelOptPS.Engine.Model;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// RMSNorm over the last dimension, computed in float32 (architectures.md §1.2). Standard (Llama, Qwen2/3, Mixtral):
/// <c>w · cast(n)</c>. Offset (Qwen3-Next, Qwen3.5; Gemma-style, weights near 0): <c>cast(n · (1 + w))</c>.
/// </summary>
internal static class RmsNorm
{
    public static Tensor Apply(Tensor x, Tensor weight, double eps, NormStyle style)
    {
        Tensor n = Normalize(x, eps);
        return style == NormStyle.Offset
            ? n.mul(weight.to(ScalarType.Float32).add(Scalars.Of(1.0), Scalars.One)).to(x.dtype)
            : weight.mul(n.to(x.dtype));
    }

    /// <summary><c>x · rsqrt(mean(x²) + eps)</c> in float32.</summary>
    public static Tensor Normalize(Tensor x, double eps)
    {
        Tensor x32 = x.to(ScalarType.Float32);
        return x32.mul(x32.pow(Scalars.Of(2L)).mean([-1], keepdim: true).add(Scalars.Of(eps), Scalars.One).rsqrt());
    }
}
