using ModelOptPS.Engine.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>transformers' Qwen3MoeRMSNorm: normalise in float32, cast back to the input dtype, then scale.</summary>
internal sealed class Qwen3MoeRMSNorm : nn.Module
{
    private readonly Parameter _weight;
    private readonly double _eps;

    public Qwen3MoeRMSNorm(long size, double eps) : base(nameof(Qwen3MoeRMSNorm))
    {
        _weight = new Parameter(ones(size));
        _eps = eps;
        register_parameter("weight", _weight);
    }

    public Tensor Forward(Tensor x)
    {
        Tensor x32 = x.to(ScalarType.Float32);
        Tensor variance = x32.pow(Scalars.Of(2L)).mean([-1], keepdim: true);
        return _weight.mul(x32.mul(variance.add(Scalars.Of(_eps), Scalars.One).rsqrt()).to(x.dtype));
    }
}
