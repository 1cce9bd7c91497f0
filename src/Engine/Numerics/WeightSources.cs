using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Reads weights of one storage type (raw little-endian bytes, as memory-mapped from a safetensors file) as exact fp32.
/// Every BF16 and F16 value is an fp32 value, so widening never rounds. Implemented by structs so that the generic
/// kernels are specialised per type by the JIT (no interface calls in the inner loops).
/// </summary>
internal interface IWeightSource
{
    static abstract DType DType { get; }

    /// <summary>The element at <paramref name="index"/> (counted in elements from <paramref name="origin"/>).</summary>
    static abstract float Load(ref byte origin, nint index);

    /// <summary>16 consecutive elements (one NVFP4 block) from <paramref name="index"/>.</summary>
    static abstract Vector512<float> Load16(ref byte origin, nint index);

    /// <summary>8 consecutive elements (half a block) from <paramref name="index"/>.</summary>
    static abstract Vector256<float> Load8(ref byte origin, nint index);
}

/// <summary>BF16 is the top half of an fp32: widening is a 16-bit shift.</summary>
internal readonly struct Bf16Source : IWeightSource
{
    public static DType DType => DType.BF16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(ref byte origin, nint index) =>
        Widening.Bf16ToSingle(Unsafe.Add(ref Unsafe.As<byte, ushort>(ref origin), index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ref byte origin, nint index)
    {
        Vector256<ushort> raw = Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref origin), (nuint)index);
        return (Vector512.WidenLower(raw.ToVector512Unsafe()) << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ref byte origin, nint index)
    {
        Vector128<ushort> raw = Vector128.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref origin), (nuint)index);
        return (Vector256.WidenLower(raw.ToVector256Unsafe()) << 16).AsSingle();
    }
}

/// <summary>IEEE half precision: widened with integer steps that are exact for normals, subnormals, Inf and NaN.</summary>
internal readonly struct F16Source : IWeightSource
{
    public static DType DType => DType.F16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(ref byte origin, nint index) =>
        Widening.F16ToSingle(Unsafe.Add(ref Unsafe.As<byte, ushort>(ref origin), index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ref byte origin, nint index)
    {
        Vector256<ushort> raw = Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref origin), (nuint)index);
        return Widening.F16ToSingle(Vector512.WidenLower(raw.ToVector512Unsafe()));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ref byte origin, nint index)
    {
        Vector128<ushort> raw = Vector128.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref origin), (nuint)index);
        return Widening.F16ToSingle(Vector256.WidenLower(raw.ToVector256Unsafe()));
    }
}

/// <summary>FP32 needs no conversion.</summary>
internal readonly struct F32Source : IWeightSource
{
    public static DType DType => DType.F32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(ref byte origin, nint index) => Unsafe.Add(ref Unsafe.As<byte, float>(ref origin), index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ref byte origin, nint index) =>
        Vector512.LoadUnsafe(ref Unsafe.As<byte, float>(ref origin), (nuint)index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ref byte origin, nint index) =>
        Vector256.LoadUnsafe(ref Unsafe.As<byte, float>(ref origin), (nuint)index);
}
