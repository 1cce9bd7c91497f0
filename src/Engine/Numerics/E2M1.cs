namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// E2M1, the 4-bit float of NVFP4: bit 3 is the sign, bits 0-2 index the magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
/// This is the readable reference; the SIMD kernels encode the same way with a different (proven equal) formula.
/// </summary>
public static class E2M1
{
    /// <summary>The largest magnitude, 6.</summary>
    public const float MaxValue = 6f;

    /// <summary>
    /// Midpoints between neighbouring magnitudes, ModelOpt's <c>e2m1_bounds</c>. A value above a bound rounds up past it;
    /// a value exactly on a bound goes to the even code (see <see cref="Encode"/>).
    /// </summary>
    public static ReadOnlySpan<float> Bounds => [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f];

    /// <summary>
    /// Code to value, ModelOpt's <c>e2m1_values</c>. Code 0x8 is "negative zero" and decodes to +0, as in ModelOpt.
    /// </summary>
    public static ReadOnlySpan<float> Values => [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, 0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];

    /// <summary>
    /// Rounds an already-scaled value to its 4-bit code, exactly as ModelOpt's <c>_cast_fp4</c>:
    /// <c>ord</c> = the number of bounds strictly below |x| (<c>torch.searchsorted</c>, left side), plus one when |x| is
    /// exactly 0.75, 1.75 or 3.5. Together that is round-half-to-even on the E2M1 grid (0.25→0, 0.75→1, 1.25→1,
    /// 1.75→2, 2.5→2, 3.5→4, 5→4) with saturation to 6 above 5 (and for +Inf).
    /// The sign bit is set when <c>x &lt; 0</c>, so -0.1 gives 0x8 and -0.0 gives 0x0.
    /// NaN compares above every bound in searchsorted, so it gives 0x7 (ModelOpt's behaviour; weights with NaN are
    /// refused before they get here, but a scaled value can be NaN in degenerate fp32-denormal tensors).
    /// </summary>
    public static byte Encode(float x)
    {
        float magnitude = MathF.Abs(x);
        int ord = 0;
        foreach (float bound in Bounds)
        {
            if (bound < magnitude || float.IsNaN(magnitude))
            {
                ord++;
            }
        }

        if (magnitude == 0.75f || magnitude == 1.75f || magnitude == 3.5f)
        {
            ord++;
        }

        return (byte)((x < 0f ? 8 : 0) | ord);
    }

    /// <summary>The value of a 4-bit code (only the low nibble is read).</summary>
    public static float Decode(int code) => Values[code & 0xF];
}
