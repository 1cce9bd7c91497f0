using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>
/// transformers' Qwen3MoeAttention: q/k/v projections without bias, per-head q_norm/k_norm before RoPE, GQA (each
/// kv head serves consecutive query heads, as repeat_kv), causal softmax attention with scale head_dim^-0.5, o_proj.
/// </summary>
internal sealed class Qwen3MoeAttention : nn.Module
{
    private readonly Linear _q, _k, _v, _o;
    private readonly Qwen3MoeRMSNorm _qNorm, _kNorm;
    private readonly int _heads, _kvHeads, _headDim;

    public Qwen3MoeAttention(SampleShape shape) : base(nameof(Qwen3MoeAttention))
    {
        (_heads, _kvHeads, _headDim) = (shape.Heads, shape.KvHeads, shape.HeadDim);
        _q = nn.Linear(shape.Hidden, _heads * _headDim, hasBias: false);
        _k = nn.Linear(shape.Hidden, _kvHeads * _headDim, hasBias: false);
        _v = nn.Linear(shape.Hidden, _kvHeads * _headDim, hasBias: false);
        _o = nn.Linear(_heads * _headDim, shape.Hidden, hasBias: false);
        _qNorm = new Qwen3MoeRMSNorm(_headDim, shape.RmsNormEps);
        _kNorm = new Qwen3MoeRMSNorm(_headDim, shape.RmsNormEps);
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
        register_module("q_norm", _qNorm);
        register_module("k_norm", _kNorm);
    }

    /// <summary>x [B, T, H] → [B, T, H].</summary>
    public Tensor Forward(Tensor x, RotaryTable rope)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor q = rope.Apply(_qNorm.Forward(_q.forward(x).view(b, t, _heads, _headDim)).transpose(1, 2));
        Tensor k = rope.Apply(_kNorm.Forward(_k.forward(x).view(b, t, _kvHeads, _headDim)).transpose(1, 2));
        Tensor v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
        v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        // Default scale head_dim^-0.5, as Qwen3's self.scaling; softmax in float32 (the model is float32). TorchSharp spells it is_casual.
        Tensor attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: null, p: 0.0, is_casual: true);
        return _o.forward(attended.transpose(1, 2).reshape(b, t, _heads * _headDim));
    }
}
