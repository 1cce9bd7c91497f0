using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// How far a correctly encoded NVFP4 value may lie from its source, derived from nvfp4-numerics.md and from nothing
/// an exporter computes: only the stored block scale byte and code are used, so the bound holds for any correct encoder
/// (CUDA or CPU scale order, compressed-tensors' reciprocal scales) and for any choice of block scale, dynamic (max)
/// or searched (MSE, FP8 scale sweep, local Hessian), and is independent of ModelOptPS's quantizer.
/// <para>What it bounds: with S = block_scale × weight_scale_2, the encoder rounds x = w / S to the nearest E2M1 value q
/// (step 5), so for |q| &lt; 6, |w − q·S| ≤ S·h(q), where h is half the E2M1 step on the side of q it came from: 0.25
/// for q ≤ 1.5, 0.5 for q = 2 and 3 (the grid step is 1), 1 for q = 4 (x ∈ [3.5, 5]). For |q| = 6, x ∈ [5, ∞): up to
/// 6 the error is at most S; beyond, the value is clipped to ±6·S and the error is the clipping distance |w| − 6·S,
/// which is allowed — any amount, with the right sign. A dynamic (max) scale clips by at most its E4M3 rounding
/// (≤ 0.375·S for normal scales), but a searched scale may clip on purpose (it trades the clipped outliers for finer
/// steps for the rest of the block), so the bound no longer limits how far.</para>
/// <para>GPTQ changes the weights it rounds (each column absorbs the rounding error of the ones before it), so its
/// codes are not the rounding of the source and no per-element bound holds; <see cref="BoundCheck"/> accepts such a
/// weight as a whole when every block keeps the max scale of its source block (GPTQ's static scales) and the tensor's
/// error energy is at most <see cref="ReroundedErrorFactor"/>² times that of rounding the source at those scales.</para>
/// <para>A relative slack of 10^-5 per unit of |q| covers every fp32 rounding in the encoder (each ≤ 2^-24 relative).
/// A correct export never exceeds the bound; swapped nibbles, swapped halves, transposed scales or another module's
/// weights exceed it at almost every block, and exceed the GPTQ allowance too.</para>
/// </summary>
internal static class ErrorBound
{
    private const double Slack = 1e-5;

    /// <summary>h(q) for E2M1 magnitude codes 0-7 (0, 0.5, 1, 1.5, 2, 3, 4, 6): for 6 only up to 6·S; beyond, clipping.</summary>
    private static readonly double[] HalfStep = [0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0];

    /// <summary>
    /// How much larger than rounding the source at the stored (max) scales a GPTQ weight's error may be, in RMS: GPTQ
    /// minimises the layer output error, not the weight error, and moves each rounding error onto later columns, so its
    /// weight error exceeds round-to-nearest's by a modest factor; this allowance is a chosen margin, not a derived bound
    /// (the GPTQ exports of the end-to-end tests pass it, swapped nibbles on the same scales fail it).
    /// </summary>
    public const double ReroundedErrorFactor = 2.0;

    /// <summary>The largest |w − q·S| a correct encoding allows for source value <paramref name="w"/> and this code at scale S.</summary>
    public static double Bound(int code, double scale, float w)
    {
        int magnitude = code & 7;
        double bound = scale * (HalfStep[magnitude] + Slack * (Math.Abs(E2M1.Decode(magnitude)) + 1));
        // The top code clips: its error is the distance beyond ±6·S (a wrong sign still fails, by |w| + 6·S).
        return magnitude == 7 ? Math.Max(bound, Math.Abs(w) - 6 * scale) : bound;
    }

    /// <summary>The squared error of rounding <paramref name="w"/> to the nearest E2M1 value at scale S (clipped at ±6·S).</summary>
    public static double RoundingSquare(float w, double scale)
    {
        if (!(scale > 0)) return (double)w * w;
        double x = Math.Abs(w) / scale, best = double.MaxValue;
        for (int magnitude = 0; magnitude < 8; magnitude++) best = Math.Min(best, Math.Abs(x - E2M1.Decode(magnitude)));
        return best * best * scale * scale;
    }

    /// <summary>
    /// True when <paramref name="stored"/> is the max scale byte of a source block with this amax (step 3, either global
    /// scale order: one E4M3 step either way), as GPTQ's static scales are.
    /// </summary>
    public static bool IsMaxScale(byte stored, float blockAmax, double weightScale2)
    {
        float s = (float)(blockAmax / (float)(6 * weightScale2));
        if (s == 0) s = 1f;
        int expected = E4M3.FromFloat(Math.Clamp(s, 1f / 512, E4M3.MaxValue));
        return Math.Abs(stored - expected) <= 1;
    }
}
