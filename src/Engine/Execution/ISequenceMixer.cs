using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>A decoder layer's token mixer (softmax attention or Gated DeltaNet), run on one sequence: [T, H] → [T, H].</summary>
internal interface ISequenceMixer
{
    Tensor Forward(ForwardContext context, Tensor x);
}

/// <summary>A decoder layer's feed-forward (dense SwiGLU or MoE), run on tokens of any sequences together: [N, H] → [N, H].</summary>
internal interface IFeedForward
{
    Tensor Forward(ForwardContext context, Tensor x);
}
