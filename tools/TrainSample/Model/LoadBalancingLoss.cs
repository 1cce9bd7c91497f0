using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample.Model;

/// <summary>
/// transformers' load_balancing_loss_func (Switch Transformer auxiliary loss) as Qwen3-MoE adds it, times
/// router_aux_loss_coef: over all layers' tokens, E · Σ_k Σ_e (fraction of tokens whose k-th choice is e) · (mean
/// router probability of e). It is smallest when routing is uniform, so every expert keeps getting trained.
/// </summary>
internal static class LoadBalancingLoss
{
    public static Tensor Compute(IReadOnlyList<Tensor> routerLogits, int experts, int topK)
    {
        Tensor probabilities = cat(routerLogits.ToArray(), 0).softmax(-1);
        Tensor selected = probabilities.topk(topK, dim: -1).indexes;
        Tensor expertMask = nn.functional.one_hot(selected, experts).to(ScalarType.Float32);
        Tensor tokensPerExpert = expertMask.mean([0]);
        Tensor routerProbabilityPerExpert = probabilities.mean([0]);
        return tokensPerExpert.mul(routerProbabilityPerExpert.unsqueeze(0)).sum().mul(Scalars.Of((long)experts));
    }
}
