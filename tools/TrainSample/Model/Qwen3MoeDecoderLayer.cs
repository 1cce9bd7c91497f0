using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>transformers' Qwen3MoeDecoderLayer: pre-norm residual attention, then pre-norm residual MoE.</summary>
internal sealed class Qwen3MoeDecoderLayer : nn.Module
{
    private readonly Qwen3MoeAttention _attention;
    private readonly Qwen3MoeSparseMoeBlock _mlp;
    private readonly Qwen3MoeRMSNorm _inputNorm, _postAttentionNorm;

    public Qwen3MoeDecoderLayer(SampleShape shape) : base(nameof(Qwen3MoeDecoderLayer))
    {
        _attention = new Qwen3MoeAttention(shape);
        _mlp = new Qwen3MoeSparseMoeBlock(shape);
        _inputNorm = new Qwen3MoeRMSNorm(shape.Hidden, shape.RmsNormEps);
        _postAttentionNorm = new Qwen3MoeRMSNorm(shape.Hidden, shape.RmsNormEps);
        register_module("self_attn", _attention);
        register_module("mlp", _mlp);
        register_module("input_layernorm", _inputNorm);
        register_module("post_attention_layernorm", _postAttentionNorm);
    }

    public (Tensor Hidden, Tensor RouterLogits) Forward(Tensor x, RotaryTable rope)
    {
        Tensor h = x.add(_attention.Forward(_inputNorm.Forward(x), rope), Scalars.One);
        var (moe, routerLogits) = _mlp.Forward(_postAttentionNorm.Forward(h));
        return (h.add(moe, Scalars.One), routerLogits);
    }
}
