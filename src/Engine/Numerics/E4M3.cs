namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// E4M3FN, the 8-bit float of the NVFP4 block scales: sign, 4 exponent bits (bias 7), 3 mantissa bits, no infinities,
/// 0x7F/0xFF are NaN, largest 448 (0x7E), smallest subnormal 2^-9 (0x01), 1.0 is 0x38.
/// This is the readable reference; the SIMD kernels inline the same bit steps on vectors.
/// </summary>
public static class E4M3
{
    /// <summary>The largest finite value, 448 (0x7E).</summary>
    public const float MaxValue = 448f;

    /// <summary>The smallest positive value, 2^-9 (0x01, a subnormal).</summary>
    public const float MinSubnormal = 1f / 512f;

    /// <summary>The byte of 1.0, which is also the byte of an all-zero NVFP4 block's scale.</summary>
    public const byte One = 0x38;

    /// <summary>The canonical NaN byte (positive sign).</summary>
    public const byte NaN = 0x7F;

    // fp32 bit patterns the cast compares against (same constants as c10's fp8e4m3fn_from_fp32_value).
    private const uint Fp32OfFp8Overflow = 1087u << 20; // 480.0f: the first magnitude past 0x7E's range.
    private const uint Fp32MinNormal = 121u << 23;      // 2^-6, E4M3's smallest normal.
    private const uint DenormMagic = 141u << 23;        // 2^14: adding it leaves the ulp at 2^-9, the subnormal step.

    /// <summary>
    /// Casts an fp32 to E4M3FN with round-to-nearest-even, bit for bit as libtorch's <c>.to(torch.float8_e4m3fn)</c>
    /// (c10 <c>fp8e4m3fn_from_fp32_value</c>). Note what libtorch does outside the finite range, since this mirrors it:
    /// there is no saturation, so |x| ≥ 480 and NaN give NaN (0x7F | sign), and (464, 480) also rounds up into the NaN
    /// code. NVFP4 never sees those: it clamps the block scale to [2^-9, 448] before the cast.
    /// </summary>
    public static byte FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint sign = bits & 0x8000_0000u;
        bits ^= sign;
        byte result;
        if (bits >= Fp32OfFp8Overflow)
        {
            // NaN, ±Inf and anything from 480 up (the bit test also catches NaN: its pattern is above Inf's).
            result = NaN;
        }
        else if (bits < Fp32MinNormal)
        {
            // Subnormal (or zero) result: add 2^14 in fp32 so that the hardware's own round-to-nearest-even drops every
            // bit below 2^-9; the low bits of the sum are then the subnormal code 0..8 (8 = 2^-6, the first normal code).
            float shifted = BitConverter.UInt32BitsToSingle(bits) + BitConverter.UInt32BitsToSingle(DenormMagic);
            result = (byte)(BitConverter.SingleToUInt32Bits(shifted) - DenormMagic);
        }
        else
        {
            // Normal: rebias the exponent (127 → 7) and round the 23-bit mantissa to 3 bits, half to even:
            // add 0x7FFFF (just under half an fp8 ulp) plus the lowest kept bit, then drop the 20 low bits.
            uint mantissaOdd = (bits >> 20) & 1u;
            bits += unchecked((uint)((7 - 127) << 23)) + 0x7FFFFu + mantissaOdd;
            result = (byte)(bits >> 20);
        }

        return (byte)(result | (sign >> 24));
    }

    /// <summary>The fp32 value of an E4M3FN byte (exact: every E4M3 value is an fp32 value). 0x7F/0xFF give NaN.</summary>
    public static float ToFloat(byte code)
    {
        int exponent = (code >> 3) & 0xF;
        int mantissa = code & 0x7;
        float magnitude;
        if (exponent == 0xF && mantissa == 0x7)
        {
            magnitude = float.NaN;
        }
        else if (exponent == 0)
        {
            magnitude = mantissa * MinSubnormal; // subnormal: m × 2^-9, exact
        }
        else
        {
            magnitude = BitConverter.UInt32BitsToSingle((uint)((exponent + 120) << 23) | (uint)(mantissa << 20));
        }

        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }
}
