using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>The largest magnitude in a tensor, and where its first NaN/±Inf is if it has one.</summary>
/// <param name="Amax">max |w| over the finite elements scanned (exact: a value of the source type).
/// Meaningless when <paramref name="FirstNonFiniteIndex"/> is set.</param>
/// <param name="FirstNonFiniteIndex">Flat index of the first NaN or ±Inf, or -1 when every element is finite.</param>
public readonly record struct AmaxResult(float Amax, long FirstNonFiniteIndex)
{
    public bool IsFinite => FirstNonFiniteIndex < 0;
}

/// <summary>
/// <c>amax = max|w|</c> over raw tensor bytes (spec step 1), with NaN/Inf detection. It works on the stored bit
/// patterns, in the source's own width: clearing the sign bit gives |w|, and for non-negative IEEE numbers the integer
/// order of the bit patterns is the numeric order, with every Inf and NaN pattern above every finite one. So one integer
/// max per lane finds both the amax and whether anything non-finite is present; only then is the span re-read to find
/// the first bad index.
/// </summary>
public static class Amax
{
    private const int ParallelChunkElements = 1 << 20;

    /// <summary>max |w| over <paramref name="data"/> (raw little-endian elements of <paramref name="dtype"/>).</summary>
    public static AmaxResult Compute(ReadOnlySpan<byte> data, DType dtype) => Compute(data, dtype, KernelPath.Auto);

    /// <summary>max |w| over fp32 values.</summary>
    public static AmaxResult Compute(ReadOnlySpan<float> data) => Compute(MemoryMarshal.AsBytes(data), DType.F32, KernelPath.Auto);

    /// <summary>
    /// max |w|, refusing a tensor that holds NaN or ±Inf with <see cref="NumericsErrorIds.NonFiniteWeight"/>,
    /// naming <paramref name="tensorName"/> and the first bad flat index.
    /// </summary>
    public static float ComputeFinite(string tensorName, ReadOnlySpan<byte> data, DType dtype)
    {
        AmaxResult result = Compute(data, dtype);
        if (!result.IsFinite)
        {
            throw NonFinite(tensorName, data, dtype, result.FirstNonFiniteIndex);
        }

        return result.Amax;
    }

    internal static ModelOptException NonFinite(string tensorName, ReadOnlySpan<byte> data, DType dtype, long index)
    {
        float value = ReadElement(data, dtype, index);
        return new ModelOptException(
            NumericsErrorIds.NonFiniteWeight,
            ErrorKind.InvalidData,
            $"Tensor '{tensorName}' holds {(float.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf")} at flat index {index} "
            + "(the first non-finite element); it cannot be quantized (NVFP4 or FP8). Fix or exclude this tensor.");
    }

    internal static unsafe AmaxResult Compute(ReadOnlySpan<byte> data, DType dtype, KernelPath path)
    {
        int size = SizeOf(dtype);
        if (data.Length % size != 0)
        {
            throw new ArgumentException($"{data.Length} bytes is not a whole number of {dtype} elements.", nameof(data));
        }

        long count = data.Length / size;
        path = KernelPaths.Resolve(path);
        int chunks = (int)Math.Max(1, (count + ParallelChunkElements - 1) / ParallelChunkElements);
        fixed (byte* origin = data)
        {
            if (chunks == 1)
            {
                return Finish(MaxBits(origin, dtype, 0, count, path), origin, dtype, 0, count);
            }

            // One array per call, for the chunks' partial results; nothing is allocated per element or per chunk.
            var partial = new AmaxResult[chunks];
            nint address = (nint)origin;
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long start = (long)chunk * ParallelChunkElements;
                long length = Math.Min(ParallelChunkElements, count - start);
                byte* p = (byte*)address;
                partial[chunk] = Finish(MaxBits(p, dtype, start, length, path), p, dtype, start, length);
            }));

            float amax = 0f;
            foreach (AmaxResult r in partial)
            {
                if (!r.IsFinite)
                {
                    return r; // chunks are in index order, so the first bad chunk holds the first bad index
                }

                amax = Math.Max(amax, r.Amax);
            }

            return new AmaxResult(amax, -1);
        }
    }

    private static int SizeOf(DType dtype) => dtype switch
    {
        DType.BF16 or DType.F16 => 2,
        DType.F32 => 4,
        _ => throw new ModelOptException(
            NumericsErrorIds.Nvfp4UnsupportedDType, ErrorKind.InvalidArgument, $"amax is computed over BF16, F16 or F32 data, not {dtype}."),
    };

    /// <summary>The bit pattern at and above which |w| is Inf or NaN, in the source width.</summary>
    private static uint NonFiniteBits(DType dtype) => dtype switch
    {
        DType.BF16 => 0x7F80u,
        DType.F16 => 0x7C00u,
        _ => 0x7F80_0000u,
    };

    private static unsafe AmaxResult Finish(uint maxBits, byte* origin, DType dtype, long start, long length)
    {
        if (maxBits < NonFiniteBits(dtype))
        {
            return new AmaxResult(BitsToSingle(maxBits, dtype), -1);
        }

        // Rare path: find the first bad element in this range.
        uint limit = NonFiniteBits(dtype);
        for (long i = start; i < start + length; i++)
        {
            if (AbsBits(origin, dtype, i) >= limit)
            {
                return new AmaxResult(float.NaN, i);
            }
        }

        throw new InvalidOperationException("unreachable: a non-finite pattern was seen but not found again");
    }

    private static float BitsToSingle(uint bits, DType dtype) => dtype switch
    {
        DType.BF16 => Widening.Bf16ToSingle((ushort)bits),
        DType.F16 => Widening.F16ToSingle((ushort)bits),
        _ => BitConverter.UInt32BitsToSingle(bits),
    };

    private static unsafe uint AbsBits(byte* origin, DType dtype, long i) =>
        dtype == DType.F32 ? ((uint*)origin)[i] & 0x7FFF_FFFFu : ((ushort*)origin)[i] & 0x7FFFu;

    private static float ReadElement(ReadOnlySpan<byte> data, DType dtype, long index) => dtype switch
    {
        DType.BF16 => Widening.Bf16ToSingle(MemoryMarshal.Read<ushort>(data[checked((int)(index * 2))..])),
        DType.F16 => Widening.F16ToSingle(MemoryMarshal.Read<ushort>(data[checked((int)(index * 2))..])),
        _ => MemoryMarshal.Read<float>(data[checked((int)(index * 4))..]),
    };

    private static unsafe uint MaxBits(byte* origin, DType dtype, long start, long length, KernelPath path)
    {
        if (dtype == DType.F32)
        {
            return MaxMasked(ref Unsafe.AsRef<uint>((uint*)origin + start), (nint)length, 0x7FFF_FFFFu, path);
        }

        return MaxMasked(ref Unsafe.AsRef<ushort>((ushort*)origin + start), (nint)length, (ushort)0x7FFF, path);
    }

    /// <summary>max(x &amp; mask) over <paramref name="length"/> unsigned integers.</summary>
    private static uint MaxMasked<T>(ref T p, nint length, T mask, KernelPath path)
        where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
    {
        nint i = 0;
        T max = T.Zero;
        if (path == KernelPath.Vector512 && length >= Vector512<T>.Count)
        {
            // Four independent accumulators keep several loads in flight.
            var m = Vector512.Create(mask);
            Vector512<T> a0 = Vector512<T>.Zero, a1 = a0, a2 = a0, a3 = a0;
            int n = Vector512<T>.Count;
            for (; i <= length - 4 * n; i += 4 * n)
            {
                a0 = Vector512.Max(a0, Vector512.LoadUnsafe(ref p, (nuint)i) & m);
                a1 = Vector512.Max(a1, Vector512.LoadUnsafe(ref p, (nuint)(i + n)) & m);
                a2 = Vector512.Max(a2, Vector512.LoadUnsafe(ref p, (nuint)(i + 2 * n)) & m);
                a3 = Vector512.Max(a3, Vector512.LoadUnsafe(ref p, (nuint)(i + 3 * n)) & m);
            }

            for (; i <= length - n; i += n)
            {
                a0 = Vector512.Max(a0, Vector512.LoadUnsafe(ref p, (nuint)i) & m);
            }

            Vector512<T> all = Vector512.Max(Vector512.Max(a0, a1), Vector512.Max(a2, a3));
            for (int k = 0; k < n; k++)
            {
                max = T.Max(max, all.GetElement(k));
            }
        }
        else if (path is KernelPath.Vector512 or KernelPath.Vector256 && length >= Vector256<T>.Count)
        {
            var m = Vector256.Create(mask);
            Vector256<T> a0 = Vector256<T>.Zero, a1 = a0, a2 = a0, a3 = a0;
            int n = Vector256<T>.Count;
            for (; i <= length - 4 * n; i += 4 * n)
            {
                a0 = Vector256.Max(a0, Vector256.LoadUnsafe(ref p, (nuint)i) & m);
                a1 = Vector256.Max(a1, Vector256.LoadUnsafe(ref p, (nuint)(i + n)) & m);
                a2 = Vector256.Max(a2, Vector256.LoadUnsafe(ref p, (nuint)(i + 2 * n)) & m);
                a3 = Vector256.Max(a3, Vector256.LoadUnsafe(ref p, (nuint)(i + 3 * n)) & m);
            }

            for (; i <= length - n; i += n)
            {
                a0 = Vector256.Max(a0, Vector256.LoadUnsafe(ref p, (nuint)i) & m);
            }

            Vector256<T> all = Vector256.Max(Vector256.Max(a0, a1), Vector256.Max(a2, a3));
            for (int k = 0; k < n; k++)
            {
                max = T.Max(max, all.GetElement(k));
            }
        }

        for (; i < length; i++)
        {
            max = T.Max(max, Unsafe.Add(ref p, i) & mask);
        }

        return uint.CreateTruncating(max);
    }
}
