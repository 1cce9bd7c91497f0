using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>
/// transformers' Qwen3MoeForCausalLM in float32 for training. Parameters are registered under the checkpoint's names
/// (<c>model.layers.L.mlp.experts.E.gate_proj.weight</c>, …), so saving is a walk over named_parameters.
/// </summary>
internal sealed class Qwen3MoeForCausalLM : nn.Module
{
    private readonly DecoderStack _model;
    private readonly Linear _lmHead;
    private readonly SampleShape _shape;

    public Qwen3MoeForCausalLM(SampleShape shape) : base(nameof(Qwen3MoeForCausalLM))
    {
        _shape = shape;
        _model = new DecoderStack(shape);
        _lmHead = nn.Linear(shape.Hidden, shape.VocabSize, hasBias: false);
        register_module("model", _model);
        register_module("lm_head", _lmHead);
    }

    /// <summary>transformers' _init_weights: normal(0, initializer_range) for Linear and Embedding, norms stay ones.</summary>
    public void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            if (!name.EndsWith("norm.weight", StringComparison.Ordinal)) nn.init.normal_(parameter, 0, _shape.InitializerRange);
        }
    }

    /// <summary>ids [B, T] → logits [B, T, V] and every layer's router logits [B·T, E].</summary>
    public (Tensor Logits, List<Tensor> RouterLogits) Forward(Tensor ids, RotaryTable rope)
    {
        var (hidden, routerLogits) = _model.Forward(ids, rope);
        return (_lmHead.forward(hidden), routerLogits);
    }

    /// <summary>transformers' Qwen3MoeModel: embed_tokens, the decoder layers, the final norm.</summary>
    private sealed class DecoderStack : nn.Module
    {
        private readonly Embedding _embed;
        private readonly ModuleList<Qwen3MoeDecoderLayer> _layers;
        private readonly Qwen3MoeRMSNorm _norm;

        public DecoderStack(SampleShape shape) : base(nameof(DecoderStack))
        {
            _embed = nn.Embedding(shape.VocabSize, shape.Hidden);
            _layers = nn.ModuleList(Enumerable.Range(0, shape.Layers).Select(_ => new Qwen3MoeDecoderLayer(shape)).ToArray());
            _norm = new Qwen3MoeRMSNorm(shape.Hidden, shape.RmsNormEps);
            register_module("embed_tokens", _embed);
            register_module("layers", _layers);
            register_module("norm", _norm);
        }

        public (Tensor Hidden, List<Tensor> RouterLogits) Forward(Tensor ids, RotaryTable rope)
        {
            Tensor x = _embed.forward(ids);
            var routerLogits = new List<Tensor>(_layers.Count);
            foreach (var layer in _layers)
            {
                (x, var logits) = layer.Forward(x, rope);
                routerLogits.Add(logits);
            }
            return (_norm.Forward(x), routerLogits);
        }
    }
}
