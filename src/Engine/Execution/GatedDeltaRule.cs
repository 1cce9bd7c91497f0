using System.Numerics;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// The gated delta rule, token by token in float32 (architectures.md §4.3 steps 5-6; transformers'
/// <c>torch_recurrent_gated_delta_rule</c> with <c>use_qk_l2norm_in_kernel</c>). Per value head, state S [dk, dv]:
/// <c>S ← exp(g_t)·S; δ = β_t (v_t − Sᵀk̂_t); S ← S + k̂_t δᵀ; o_t = Sᵀq̂_t</c>, with q̂, k̂ L2-normalised and q̂ scaled
/// by <c>dk^-0.5</c>.
/// </summary>
/// <remarks>
/// The recurrence runs as a plain SIMD loop, one task per value head, not as torch operations: per token it is a handful
/// of tiny ops on a [heads, dk, dv] state, and libtorch's thread pool meets at a barrier in every one of them. For 32
/// heads of 128×128 on the 2-core build machine under load, the torch loop took 0.27 ms of CPU per token on one thread
/// but 32 ms per token on its default two; this loop takes 0.22 ms, its heads' states stay in cache for the whole
/// sequence, and its threads meet once per call.
/// </remarks>
internal static class GatedDeltaRule
{
    /// <summary>q, k [T, nv, dk] (already repeated to the value heads), v [T, nv, dv], g and beta [T, nv] → [T, nv, dv] float32.</summary>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta)
    {
        int length = (int)q.shape[0], heads = (int)q.shape[1], keyDim = (int)q.shape[2], valueDim = (int)v.shape[2];
        // The recurrence indexes [T, nv, d] float arrays by int: one chunk of tokens must fit one array.
        long values = (long)length * heads * Math.Max(keyDim, valueDim);
        if (values > Array.MaxLength) throw ExecutionErrors.TooLarge($"{length:N0} tokens at once need {values:N0} values in a gated delta rule");
        var problem = new Problem(
            Floats(L2Normalize(q.to(ScalarType.Float32)).mul(Scalars.Of(1.0 / Math.Sqrt(keyDim)))),
            Floats(L2Normalize(k.to(ScalarType.Float32))),
            Floats(v.to(ScalarType.Float32)),
            Floats(g.to(ScalarType.Float32).exp()),
            Floats(beta.to(ScalarType.Float32)),
            new float[length * heads * valueDim],
            length, heads, keyDim, valueDim);
        ParallelFailures.Run(() => Parallel.For(0, heads, problem.RunHead));
        return tensor(problem.Output, [length, heads, valueDim], ScalarType.Float32).to(q.device);
    }

    /// <summary>FLA's l2norm: <c>x · rsqrt(Σx² + 1e-6)</c> over the last dim.</summary>
    public static Tensor L2Normalize(Tensor x) => x.mul(x.pow(Scalars.Of(2L)).sum([-1], keepdim: true).add(Scalars.Of(1e-6), Scalars.One).rsqrt());

    private static float[] Floats(Tensor t) => t.cpu().contiguous().data<float>().ToArray();

    /// <summary>Row-major inputs [T, nv, d] and the output; <see cref="RunHead"/> owns one head's slices.</summary>
    private sealed record Problem(float[] Query, float[] Key, float[] Value, float[] Decay, float[] Rate, float[] Output,
        int Length, int Heads, int KeyDim, int ValueDim)
    {
        public void RunHead(int head)
        {
            var state = new float[KeyDim * ValueDim];
            var memory = new float[ValueDim];
            var delta = new float[ValueDim];
            for (int t = 0; t < Length; t++)
            {
                int at = t * Heads + head;
                var q = Query.AsSpan(at * KeyDim, KeyDim);
                var k = Key.AsSpan(at * KeyDim, KeyDim);
                var v = Value.AsSpan(at * ValueDim, ValueDim);
                var o = Output.AsSpan(at * ValueDim, ValueDim);
                float decay = Decay[at], rate = Rate[at];

                // Sᵀk of the state before decay; the decay is folded into δ and the update below.
                memory.AsSpan().Clear();
                for (int a = 0; a < KeyDim; a++) MultiplyAdd(k[a], Row(state, a), memory);
                for (int j = 0; j < ValueDim; j++) delta[j] = rate * (v[j] - decay * memory[j]);

                // S ← decay·S + k δᵀ, and o = Sᵀq from the new rows in the same pass.
                for (int a = 0; a < KeyDim; a++)
                {
                    var row = Row(state, a);
                    ScaleAdd(decay, row, k[a], delta);
                    MultiplyAdd(q[a], row, o);
                }
            }
        }

        private Span<float> Row(float[] state, int a) => state.AsSpan(a * ValueDim, ValueDim);

        /// <summary>y += s·x.</summary>
        private static void MultiplyAdd(float s, ReadOnlySpan<float> x, Span<float> y)
        {
            ref float xs = ref MemoryMarshal.GetReference(x), ys = ref MemoryMarshal.GetReference(y);
            int i = 0;
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
                (Vector.LoadUnsafe(ref ys, (nuint)i) + s * Vector.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ys, (nuint)i);
            for (; i < x.Length; i++) y[i] += s * x[i];
        }

        /// <summary>row ← d·row + s·x.</summary>
        private static void ScaleAdd(float d, Span<float> row, float s, ReadOnlySpan<float> x)
        {
            ref float rs = ref MemoryMarshal.GetReference(row), xs = ref MemoryMarshal.GetReference(x);
            int i = 0;
            for (; i <= row.Length - Vector<float>.Count; i += Vector<float>.Count)
                (d * Vector.LoadUnsafe(ref rs, (nuint)i) + s * Vector.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref rs, (nuint)i);
            for (; i < row.Length; i++) row[i] = d * row[i] + s * x[i];
        }
    }
}
