using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>The weights of a SwiGLU MLP (gate_proj, up_proj, down_proj; Mixtral's w1, w3, w2).</summary>
internal sealed record MlpWeights(LinearWeights Gate, LinearWeights Up, LinearWeights Down);

/// <summary><c>down(silu(gate(x)) · up(x))</c> (architectures.md §1.5); dense layers and the shared expert.</summary>
internal sealed class SwiGluMlp(MlpWeights weights) : IFeedForward
{
    public Tensor Forward(ForwardContext context, Tensor x)
    {
        context.CheckFinite(x, weights.Gate.Site);
        Tensor gate = nn.functional.linear(context.Input(weights.Gate.Site, x), weights.Gate.Weight, weights.Gate.Bias);
        Tensor up = nn.functional.linear(context.Input(weights.Up.Site, x), weights.Up.Weight, weights.Up.Bias);
        return context.Linear(weights.Down, gate.silu().mul(up));
    }
}
