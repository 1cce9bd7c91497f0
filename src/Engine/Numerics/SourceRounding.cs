using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// <c>T(x)</c>: rounds an fp32 value to the grid of a weight's storage type T, round to nearest even, and returns it as
/// fp32. PyTorch's <c>w / scale</c> on a BF16/F16 tensor computes in fp32 and stores the quotient as T, so the FP8 cast
/// sees <c>T(quotient)</c> (FP8-FACTS). Structs, so that the generic kernels are specialised per type by the JIT.
/// Scalar and vector forms give the same result for every input (tests check it).
/// </summary>
internal interface ISourceRounding
{
    static abstract float Round(float x);

    static abstract Vector512<float> Round(Vector512<float> x);

    static abstract Vector256<float> Round(Vector256<float> x);
}

/// <summary>
/// BF16 keeps the top 16 bits of an fp32: add 0x7FFF plus the lowest kept bit, clear the low 16 (c10's
/// <c>round_to_nearest_even</c> for non-NaN values; correct across subnormals and into ±Inf).
/// </summary>
internal readonly struct Bf16Rounding : ISourceRounding
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return BitConverter.UInt32BitsToSingle((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF_0000u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        return ((bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) & Vector512.Create(0xFFFF_0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        return ((bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) & Vector256.Create(0xFFFF_0000u)).AsSingle();
    }
}

/// <summary>
/// IEEE half: the scalar form is .NET's own correctly rounded fp32 → Half conversion. The vector form rounds on the
/// fp32 pattern: normal halves keep 10 mantissa bits (add 0xFFF plus the lowest kept bit, clear the low 13), results
/// from 65536 up (first value past 65504's rounding range) are ±Inf (Inf and NaN patterns land there too); below 2^-14 (the half subnormals, multiples of
/// 2^-24) adding 0.5 makes the FPU round to a multiple of 2^-24, half to even, and subtracting 0.5 is exact.
/// NaN becomes ±Inf there, not NaN: both cast to the same E4M3 byte, and NaN weights are refused anyway.
/// </summary>
internal readonly struct F16Rounding : ISourceRounding
{
    private const uint MinNormal = 0x3880_0000u; // 2^-14
    private const uint Overflow = 0x4780_0000u;  // 65536
    private const uint Infinity = 0x7F80_0000u;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float x) => (float)(Half)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        Vector512<uint> sign = bits & Vector512.Create(0x8000_0000u);
        Vector512<uint> magnitude = bits ^ sign;
        Vector512<uint> normal = (magnitude + Vector512.Create(0xFFFu) + ((magnitude >> 13) & Vector512<uint>.One)) & Vector512.Create(0xFFFF_E000u);
        normal = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(normal, Vector512.Create(Overflow)), Vector512.Create(Infinity), normal);
        Vector512<uint> subnormal = (magnitude.AsSingle() + Vector512.Create(0.5f) - Vector512.Create(0.5f)).AsUInt32();
        return (Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(MinNormal)), subnormal, normal) | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        Vector256<uint> sign = bits & Vector256.Create(0x8000_0000u);
        Vector256<uint> magnitude = bits ^ sign;
        Vector256<uint> normal = (magnitude + Vector256.Create(0xFFFu) + ((magnitude >> 13) & Vector256<uint>.One)) & Vector256.Create(0xFFFF_E000u);
        normal = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(normal, Vector256.Create(Overflow)), Vector256.Create(Infinity), normal);
        Vector256<uint> subnormal = (magnitude.AsSingle() + Vector256.Create(0.5f) - Vector256.Create(0.5f)).AsUInt32();
        return (Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(MinNormal)), subnormal, normal) | sign).AsSingle();
    }
}

/// <summary>FP32 weights: the quotient is already an fp32 value.</summary>
internal readonly struct F32Rounding : ISourceRounding
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> x) => x;
}
