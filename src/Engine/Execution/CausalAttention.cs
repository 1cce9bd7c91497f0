using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Causal softmax attention with grouped KV heads (architectures.md §1.4): query head h reads KV head
/// <c>h / (heads / kvHeads)</c>, scale <c>headDim^-0.5</c>, optional sliding window (a query sees the last
/// <c>window</c> keys, itself included).
/// </summary>
internal static class CausalAttention
{
    /// <summary>q [T, heads, D], k and v [T, kvHeads, D] → [T, heads · D].</summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, int? slidingWindow = null)
    {
        long length = q.shape[0], heads = q.shape[1], kvHeads = k.shape[1], dim = q.shape[2];
        long groups = heads / kvHeads;
        Tensor query = q.transpose(0, 1);
        Tensor key = (groups == 1 ? k : k.repeat_interleave(groups, dim: 1)).transpose(0, 1);
        Tensor value = (groups == 1 ? v : v.repeat_interleave(groups, dim: 1)).transpose(0, 1);
        Tensor output = slidingWindow is { } window && window < length
            ? F.scaled_dot_product_attention(query, key, value, WindowMask(length, window, q.device), 0.0, false)
            : F.scaled_dot_product_attention(query, key, value, null, 0.0, true);
        return output.transpose(0, 1).reshape(length, heads * dim);
    }

    /// <summary>True where query i may attend key j: <c>0 ≤ i − j &lt; window</c>.</summary>
    private static Tensor WindowMask(long length, int window, Device device)
    {
        Tensor i = arange(Scalars.Of(0L), Scalars.Of((long)length), Scalars.One, device: device).unsqueeze(1);
        Tensor j = arange(Scalars.Of(0L), Scalars.Of((long)length), Scalars.One, device: device).unsqueeze(0);
        Tensor distance = i.sub(j);
        return distance.ge(Scalars.Of(0L)).logical_and(distance.lt(Scalars.Of((long)window)));
    }
}
