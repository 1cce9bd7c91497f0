using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// The gated delta rule, token by token in float32 (architectures.md §4.3 steps 5-6; transformers'
/// <c>torch_recurrent_gated_delta_rule</c> with <c>use_qk_l2norm_in_kernel</c>). Per value head, state S [dk, dv]:
/// <c>S ← exp(g_t)·S; δ = β_t (v_t − Sᵀk̂_t); S ← S + k̂_t δᵀ; o_t = Sᵀq̂_t</c>, with q̂, k̂ L2-normalised and q̂ scaled
/// by <c>dk^-0.5</c>. All heads advance together; the state is updated in place.
/// </summary>
internal static class GatedDeltaRule
{
    /// <summary>q, k [T, nv, dk] (already repeated to the value heads), v [T, nv, dv], g and beta [T, nv] → [T, nv, dv] float32.</summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta)
    {
        long length = q.shape[0], heads = q.shape[1], keyDim = q.shape[2], valueDim = v.shape[2];
        Tensor query = L2Normalize(q.to(ScalarType.Float32)).mul(1.0 / Math.Sqrt(keyDim));
        Tensor key = L2Normalize(k.to(ScalarType.Float32));
        Tensor value = v.to(ScalarType.Float32);
        Tensor decay = g.to(ScalarType.Float32).exp().view(length, heads, 1, 1);
        Tensor rate = beta.to(ScalarType.Float32).view(length, heads, 1, 1);

        Tensor state = zeros([heads, keyDim, valueDim], ScalarType.Float32, q.device);
        Tensor output = empty([length, heads, valueDim], ScalarType.Float32, q.device);
        for (long t = 0; t < length; t++)
        {
            using var step = NewDisposeScope();
            state.mul_(decay[t]);
            Tensor kt = key[t].unsqueeze(1);                               // [nv, 1, dk]
            Tensor memory = kt.bmm(state);                                 // Sᵀk: [nv, 1, dv]
            Tensor delta = value[t].unsqueeze(1).sub(memory).mul(rate[t]); // [nv, 1, dv]
            state.add_(kt.transpose(1, 2).bmm(delta));                     // k δᵀ: [nv, dk, dv]
            output[t].copy_(query[t].unsqueeze(1).bmm(state).squeeze(1));  // Sᵀq: [nv, dv]
        }
        return output;
    }

    /// <summary>FLA's l2norm: <c>x · rsqrt(Σx² + 1e-6)</c> over the last dim.</summary>
    public static Tensor L2Normalize(Tensor x) => x.mul(x.pow(2).sum([-1], keepdim: true).add(1e-6).rsqrt());
}
