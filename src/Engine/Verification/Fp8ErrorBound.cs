using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// How far a correctly encoded FP8 per-tensor weight may lie from its source, derived from ModelOpt's formula and from
/// the stored values alone (nothing an exporter computes), so it holds for either device's operation order.
/// <para>ModelOpt (quant_utils <c>to_quantized_weight</c>): <c>(weight.to(T) / weight_scale).to(float8_e4m3fn)</c> in the
/// source dtype T. On CPU that is q = e4m3(T(fl32(w / s))); on CUDA the 0-d scale is first cast to T:
/// q = e4m3(T(fl32(w / T(s)))). Dequantized: dq = E4M3(q)·s. With x = w / s (exact) and y = the value cast to e4m3:</para>
/// <para>|w − dq| = s·|x − E4M3(q)| ≤ s·|y − E4M3(q)| + s·|x − y|, where</para>
/// <list type="bullet">
/// <item>|y − E4M3(q)| ≤ h(q): the cast rounds to nearest, so y lies within half the grid spacing next to q, on the side
/// x lies on: h(q) = 2^(⌊log2 |q|⌋ − 4) for |q| ≥ 2^-6 (3 mantissa bits) and 2^-10 below
/// (subnormal step 2^-9), halved when |q| is a power of two ≥ 2^-5 and |x| &lt; |q| (the spacing below it is half);
/// when x and y lie on different sides of q, |x − q| ≤ |x − y| alone. q = 448 covers y &lt; 464, the largest value
/// that rounds to it (the scale amax/448 keeps |x| ≤ 448).</item>
/// <item>s·|x − y| ≤ |w|·|1 − s/T(s)| (CUDA's cast of the scale; 0 when T is f32) + |w|·max(1, s/T(s))·(2^-24 + u_T)
/// (the fp32 quotient, then its one rounding to T: u_T = 2^-8 for bf16, 2^-11 for f16, 0 for f32) + s·a_T (f16's
/// subnormal range adds an absolute 2^-25; bf16 and f32 share fp32's range).</item>
/// </list>
/// <para>The scale's own rounding (weight_scale = fl32(amax / 448)) needs no allowance: the bound uses the stored s. A
/// relative slack of 10^-6 covers the check's own double arithmetic. A correct export never exceeds the bound; codes
/// of another module, or a scale off by more than a T rounding, exceed it almost everywhere.</para>
/// </summary>
internal readonly struct Fp8ErrorBound
{
    private const double Slack = 1e-6;

    /// <summary>fp32 of every E4M3FN byte (0x7F/0xFF NaN).</summary>
    private static readonly float[] Decoded = Enumerable.Range(0, 256).Select(b => E4M3.ToFloat((byte)b)).ToArray();

    private readonly double _scale;
    private readonly double _scaleCast;
    private readonly double _quotientRounding;
    private readonly double _absolute;

    /// <param name="scale">The stored weight_scale.</param>
    /// <param name="source">The source weight's dtype T (BF16, F16 or F32).</param>
    public Fp8ErrorBound(float scale, DType source)
    {
        _scale = scale;
        double cast = RoundTo(source, scale);
        double ratio = cast > 0 && double.IsFinite(cast) ? scale / cast : 1; // a scale T cannot hold: only the CPU order is meaningful
        double unit = source switch { DType.BF16 => Math.ScaleB(1, -8), DType.F16 => Math.ScaleB(1, -11), _ => 0 };
        _scaleCast = Math.Abs(1 - ratio);
        _quotientRounding = Math.Max(1, ratio) * (Math.ScaleB(1, -24) + unit);
        _absolute = source == DType.F16 ? scale * Math.ScaleB(1, -25) : 0;
    }

    /// <summary>fp32(e4m3 byte) × weight_scale, in double (exact).</summary>
    public double Dequantize(byte code) => Decoded[code] * _scale;

    /// <summary>The largest |w − dq| a correct encoding allows for source value <paramref name="w"/> stored as <paramref name="code"/>.</summary>
    public double Allowance(float w, byte code)
    {
        double q = Math.Abs(Decoded[code]);
        double magnitude = Math.Abs((double)w);
        double half = q >= Math.ScaleB(1, -6) ? Math.ScaleB(1, Math.ILogB(q) - 4) : Math.ScaleB(1, -10);
        // Below a power of two (exponent field >= 2, mantissa 0) the spacing is half: x < q there, so y ≤ q too or
        // |x − q| ≤ |x − y| already (the rounding terms below cover it).
        if ((code & 0x07) == 0 && ((code >> 3) & 0x0F) >= 2 && magnitude < q * _scale) half /= 2;
        return (_scale * half + magnitude * (_scaleCast + _quotientRounding) + _absolute) * (1 + Slack);
    }

    /// <summary>T(x): x rounded to nearest-even in the source dtype.</summary>
    private static double RoundTo(DType dtype, float x) => dtype switch
    {
        DType.BF16 => Widening.Bf16ToSingle(Bf16(x)),
        DType.F16 => (float)(Half)x,
        _ => x,
    };

    /// <summary>fp32 → bf16 bits, round to nearest even (finite inputs).</summary>
    private static ushort Bf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
}
