using ModelOptPS.Engine.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>
/// transformers' Qwen3MoeSparseMoeBlock: router logits from <c>gate</c>, softmax over all experts in float32, top-k,
/// renormalised (norm_topk_prob), cast to the hidden dtype; each expert runs on the tokens routed to it and its
/// weighted output is added back. No shared expert.
/// </summary>
internal sealed class Qwen3MoeSparseMoeBlock : nn.Module
{
    private readonly Linear _gate;
    private readonly ModuleList<Qwen3MoeMLP> _experts;
    private readonly int _topK;

    public Qwen3MoeSparseMoeBlock(SampleShape shape) : base(nameof(Qwen3MoeSparseMoeBlock))
    {
        _topK = shape.TopK;
        _gate = nn.Linear(shape.Hidden, shape.Experts, hasBias: false);
        _experts = nn.ModuleList(Enumerable.Range(0, shape.Experts).Select(_ => new Qwen3MoeMLP(shape.Hidden, shape.ExpertWidth)).ToArray());
        register_module("gate", _gate);
        register_module("experts", _experts);
    }

    /// <summary>x [B, T, H] → output [B, T, H] and the router logits [B·T, E] (for the load-balancing loss).</summary>
    public (Tensor Output, Tensor RouterLogits) Forward(Tensor x)
    {
        long hidden = x.shape[^1];
        Tensor tokens = x.reshape(-1, hidden);
        Tensor routerLogits = _gate.forward(tokens);
        var (weights, selected) = routerLogits.softmax(1, ScalarType.Float32).topk(_topK, dim: -1);
        weights = weights.div(weights.sum([-1], keepdim: true)).to(x.dtype);
        Tensor flatWeights = weights.reshape(-1);
        Tensor flatSelected = selected.reshape(-1);
        Tensor output = zeros_like(tokens);
        for (int e = 0; e < _experts.Count; e++)
        {
            // Positions in the flattened [N, k] choice table that picked expert e: token = position / k.
            Tensor positions = flatSelected.eq(Scalars.Of((long)e)).nonzero().squeeze(1);
            if (positions.shape[0] == 0) continue;
            Tensor tokenIndex = positions.div(Scalars.Of((long)_topK), rounding_mode: RoundingMode.floor);
            Tensor routed = _experts[e].Forward(tokens.index_select(0, tokenIndex)).mul(flatWeights.index_select(0, positions).unsqueeze(1));
            output = output.index_add(0, tokenIndex, routed, Scalars.One);
        }
        return (output.view(x.shape), routerLogits);
    }
}
