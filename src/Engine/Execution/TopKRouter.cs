using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Softmax top-k routing (architectures.md §4.1): softmax over all experts in float32, the k largest, and (where the
/// family says so) the k weights renormalised to sum to 1.
/// </summary>
internal static class TopKRouter
{
    /// <summary>Router logits [N, E] → weights (float32) and expert indices (int64), both [N, k].</summary>
    public static (Tensor Weights, Tensor Indices) Route(Tensor logits, int topK, bool renormalize)
    {
        Tensor probabilities = logits.softmax(-1, ScalarType.Float32);
        var (weights, indices) = probabilities.topk(topK, dim: -1);
        if (renormalize) weights = weights.div(weights.sum([-1], keepdim: true));
        return (weights, indices);
    }
}
