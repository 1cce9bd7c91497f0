using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// How far a correctly encoded NVFP4 value may lie from its source, derived from nvfp4-numerics.md and from nothing
/// an exporter computes: only the stored block scale byte and code are used, so the bound holds for any correct encoder
/// (CUDA or CPU scale order, compressed-tensors' reciprocal scales) and is independent of ModelOptPS's quantizer.
/// <para>With S = block_scale × weight_scale_2, the encoder rounds x = w / S to the nearest E2M1 value q (step 5), so
/// |w − q·S| ≤ S·h(q), where h is half the E2M1 step on the side of q it came from: 0.25 for q ≤ 1.5, 0.5 for q = 2
/// and 3 (the grid step is 1), 1 for q = 4 (x ∈ [3.5, 5]). For q = 6, x may exceed 6 (saturation) when the block scale
/// was rounded down: block_scale = e4m3(s) with s = block_amax / (6·weight_scale_2) and s ≤ block_scale + u/2, where u
/// is the E4M3 spacing above block_scale; so x ≤ 6·(1 + u / (2·block_scale)) and h(6) = max(1, that − 6). For normal
/// scales that excess is ≤ 0.375, for the subnormal 2^-9 scale it reaches 3.</para>
/// <para>A relative slack of 10^-5 per unit of |q| covers every fp32 rounding in the encoder (each ≤ 2^-24 relative).
/// A correct export never exceeds the bound; swapped nibbles, swapped halves, transposed scales or another module's
/// weights exceed it at almost every block.</para>
/// </summary>
internal static class ErrorBound
{
    private const double Slack = 1e-5;

    /// <summary>h(q) for E2M1 magnitude codes 0-6 (0, 0.5, 1, 1.5, 2, 3, 4); code 7 (6) depends on the block scale.</summary>
    private static readonly double[] HalfStep = [0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 1.0];

    /// <summary>Allowance in units of S, indexed by (block scale byte &lt;&lt; 3) | magnitude code.</summary>
    private static readonly double[] Allowances = Build();

    /// <summary>The largest |w − q·S| / S a correct encoding allows for this code in a block with this scale byte.</summary>
    public static double Allowance(byte blockScale, int code) => Allowances[(blockScale << 3) | (code & 7)];

    private static double[] Build()
    {
        var table = new double[256 * 8];
        for (int scale = 0; scale < 256; scale++)
        {
            for (int magnitude = 0; magnitude < 8; magnitude++)
            {
                double h = magnitude < 7 ? HalfStep[magnitude] : Math.Max(1.0, SaturationExcess((byte)scale));
                table[(scale << 3) | magnitude] = h + Slack * (Math.Abs(E2M1.Decode(magnitude)) + 1);
            }
        }
        return table;
    }

    /// <summary>How far past 6 a scaled value can be when the block scale was rounded down by half its E4M3 spacing.</summary>
    private static double SaturationExcess(byte blockScale)
    {
        double value = E4M3.ToFloat(blockScale);
        if (!(value > 0)) return 0;
        int exponent = (blockScale >> 3) & 0xF;
        double spacing = exponent == 0 ? 1.0 / 512 : Math.ScaleB(1.0, exponent - 10);
        return 6 * (1 + spacing / 2 / value) * (1 + 1e-6) - 6;
    }
}
