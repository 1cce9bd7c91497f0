using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>A shared expert and its scalar sigmoid gate (Qwen3-Next, Qwen3.5-MoE).</summary>
internal sealed record SharedExpertWeights(MlpWeights Mlp, LinearWeights Gate);

/// <summary>The weights of a sparse MoE block and how it routes.</summary>
internal sealed record MoeWeights(LinearWeights Router, ExpertWeights Experts, SharedExpertWeights? Shared, int TopK, bool Renormalize);

/// <summary>
/// Sparse MoE feed-forward (architectures.md §4.1): router → top-k → experts grouped by expert, plus
/// <c>sigmoid(x · W_sg^T) · SharedMLP(x)</c> where the family has a shared expert.
/// </summary>
internal sealed class MoeBlock(MoeWeights weights) : IFeedForward
{
    public MoeWeights Weights => weights;

    public Tensor Forward(ForwardContext context, Tensor x)
    {
        Tensor logits = context.Linear(weights.Router, x);
        var (routing, indices) = TopKRouter.Route(logits, weights.TopK, weights.Renormalize);
        context.ObserveRouting(weights.Experts.Names.Container, indices);
        Tensor output = GroupedExperts.Forward(context, weights.Experts, x, routing, indices);
        if (weights.Shared is { } shared)
        {
            Tensor sharedOutput = new SwiGluMlp(shared.Mlp).Forward(context, x);
            output = output.add(context.Linear(shared.Gate, x).sigmoid().mul(sharedOutput), Scalars.One);
        }
        return output;
    }
}
