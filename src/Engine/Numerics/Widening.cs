using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelOptPS.Engine.Numerics;

/// <summary>Exact BF16/F16 → fp32 conversions, scalar and on vectors of 16-bit patterns already zero-extended to 32 bits.</summary>
internal static class Widening
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    // F16 layout: sign 0x8000, exponent 0x7C00 (bias 15), mantissa 0x03FF.
    // Normal:    shift the exponent+mantissa up by 13 and add (127-15) << 23 to rebias.
    // Inf/NaN:   exponent 31 must become 255, so add (255-31) << 23 instead; the NaN payload moves up unchanged.
    // Subnormal: the value is mantissa × 2^-24; an int→float conversion and a power-of-two multiply are both exact
    //            (and, unlike reinterpreting as an fp32 denormal, do not depend on denormals-are-zero being off).
    private const uint NormalRebias = (127u - 15u) << 23;
    private const uint SpecialRebias = (255u - 31u) << 23;
    private const float TwoToMinus24 = 1f / 16777216f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F16ToSingle(Vector512<uint> half)
    {
        Vector512<uint> magnitude = half & Vector512.Create(0x7FFFu);
        Vector512<uint> sign = (half & Vector512.Create(0x8000u)) << 16;
        Vector512<uint> shifted = magnitude << 13;
        Vector512<uint> normal = shifted + Vector512.Create(NormalRebias);
        Vector512<uint> special = shifted + Vector512.Create(SpecialRebias);
        Vector512<uint> subnormal = (Vector512.ConvertToSingle(magnitude.AsInt32()) * Vector512.Create(TwoToMinus24)).AsUInt32();
        Vector512<uint> result = Vector512.ConditionalSelect(
            Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u)),
            special,
            Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(0x400u)), subnormal, normal));
        return (result | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F16ToSingle(Vector256<uint> half)
    {
        Vector256<uint> magnitude = half & Vector256.Create(0x7FFFu);
        Vector256<uint> sign = (half & Vector256.Create(0x8000u)) << 16;
        Vector256<uint> shifted = magnitude << 13;
        Vector256<uint> normal = shifted + Vector256.Create(NormalRebias);
        Vector256<uint> special = shifted + Vector256.Create(SpecialRebias);
        Vector256<uint> subnormal = (Vector256.ConvertToSingle(magnitude.AsInt32()) * Vector256.Create(TwoToMinus24)).AsUInt32();
        Vector256<uint> result = Vector256.ConditionalSelect(
            Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00u)),
            special,
            Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(0x400u)), subnormal, normal));
        return (result | sign).AsSingle();
    }
}
