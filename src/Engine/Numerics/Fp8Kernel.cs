using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// What one pass of <see cref="Fp8Kernel"/> saw, as fp32 bit patterns of magnitudes (integer max = float max, and every
/// Inf/NaN pattern is above every finite one).
/// </summary>
/// <param name="MaxAbsBits">max |w| of the source; ≥ 0x7F800000 when a NaN or Inf was present.</param>
/// <param name="MaxQuotientBits">max |T(w / divisor)|; above 464's pattern some code is the E4M3 NaN 0x7F/0xFF.</param>
internal readonly record struct Fp8KernelStats(uint MaxAbsBits, uint MaxQuotientBits)
{
    public static Fp8KernelStats Max(Fp8KernelStats a, Fp8KernelStats b) =>
        new(Math.Max(a.MaxAbsBits, b.MaxAbsBits), Math.Max(a.MaxQuotientBits, b.MaxQuotientBits));
}

/// <summary>
/// The FP8 per-tensor quantizer: <c>code = e4m3(T(w / divisor))</c> per element, where the divisor is the weight scale
/// in the order the caller chose (<see cref="Fp8.Divisor"/>) and T the rounding to the weight's dtype. Widest SIMD path
/// the CPU accelerates, in parallel over contiguous chunks; the scalar path is the readable definition
/// (<see cref="E4M3.FromFloat"/>) and every vector path gives its bytes exactly. Per call: one closure and one small
/// array of per-chunk results; nothing per element.
/// </summary>
internal static unsafe partial class Fp8Kernel
{
    /// <summary>About this many elements per parallel work item (512 KiB of BF16).</summary>
    private const int ChunkElements = 1 << 18;

    /// <summary>
    /// Quantizes <paramref name="destination"/>.Length elements of <paramref name="source"/> (raw
    /// <paramref name="sourceType"/>), rounding each quotient to <paramref name="roundTo"/>: the source's own type for an
    /// export, or BF16/F16 for fp32 copies of such weights (fake quantization). Sizes are assumed validated.
    /// </summary>
    public static Fp8KernelStats Quantize(
        ReadOnlySpan<byte> source, DType sourceType, DType roundTo, float divisor, Span<byte> destination, KernelPath path)
    {
        path = KernelPaths.Resolve(path);
        long count = destination.Length;
        int chunks = (int)Math.Max(1, (count + ChunkElements - 1) / ChunkElements);
        fixed (byte* src = source, dst = destination)
        {
            if (chunks == 1)
            {
                return Run(path, sourceType, roundTo, src, dst, 0, (nint)count, divisor);
            }

            var partial = new Fp8KernelStats[chunks];
            nint s = (nint)src, d = (nint)dst;
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long start = (long)chunk * ChunkElements;
                partial[chunk] = Run(path, sourceType, roundTo, (byte*)s, (byte*)d, (nint)start, (nint)Math.Min(ChunkElements, count - start), divisor);
            }));

            var all = default(Fp8KernelStats);
            foreach (Fp8KernelStats p in partial)
            {
                all = Fp8KernelStats.Max(all, p);
            }

            return all;
        }
    }

    /// <summary>The same work on the calling thread only (for the benchmark's per-core figure).</summary>
    public static Fp8KernelStats QuantizeSingleThreaded(
        ReadOnlySpan<byte> source, DType sourceType, float divisor, Span<byte> destination, KernelPath path)
    {
        fixed (byte* src = source, dst = destination)
        {
            return Run(KernelPaths.Resolve(path), sourceType, sourceType, src, dst, 0, destination.Length, divisor);
        }
    }

    private static Fp8KernelStats Run(KernelPath path, DType sourceType, DType roundTo, byte* src, byte* dst, nint start, nint count, float divisor) =>
        (sourceType, roundTo) switch
        {
            (DType.BF16, DType.BF16) => Run<Bf16Source, Bf16Rounding>(path, src, dst, start, count, divisor),
            (DType.F16, DType.F16) => Run<F16Source, F16Rounding>(path, src, dst, start, count, divisor),
            (DType.F32, DType.F32) => Run<F32Source, F32Rounding>(path, src, dst, start, count, divisor),
            (DType.F32, DType.BF16) => Run<F32Source, Bf16Rounding>(path, src, dst, start, count, divisor),
            (DType.F32, DType.F16) => Run<F32Source, F16Rounding>(path, src, dst, start, count, divisor),
            _ => throw new ArgumentOutOfRangeException(nameof(sourceType), $"{sourceType} rounded to {roundTo} is not an FP8 source."),
        };

    private static Fp8KernelStats Run<TSource, TRound>(KernelPath path, byte* src, byte* dst, nint start, nint count, float divisor)
        where TSource : struct, IWeightSource
        where TRound : struct, ISourceRounding => path switch
        {
            KernelPath.Vector512 => Elements512<TSource, TRound>(src, dst, start, count, divisor),
            KernelPath.Vector256 => Elements256<TSource, TRound>(src, dst, start, count, divisor),
            _ => ElementsScalar<TSource, TRound>(src, dst, start, count, divisor, default),
        };

    /// <summary>
    /// The definition, one element at a time; also the vector paths' tail. <paramref name="seen"/> carries the vector
    /// part's statistics in.
    /// </summary>
    private static Fp8KernelStats ElementsScalar<TSource, TRound>(byte* src, byte* dst, nint start, nint count, float divisor, Fp8KernelStats seen)
        where TSource : struct, IWeightSource
        where TRound : struct, ISourceRounding
    {
        uint maxAbs = seen.MaxAbsBits, maxQuotient = seen.MaxQuotientBits;
        ref byte origin = ref *src;
        for (nint i = start; i < start + count; i++)
        {
            float w = TSource.Load(ref origin, i);
            float q = TRound.Round(w / divisor); // true IEEE division, as PyTorch's div on every device
            maxAbs = Math.Max(maxAbs, BitConverter.SingleToUInt32Bits(w) & 0x7FFF_FFFFu);
            maxQuotient = Math.Max(maxQuotient, BitConverter.SingleToUInt32Bits(q) & 0x7FFF_FFFFu);
            dst[i] = E4M3.FromFloat(q);
        }

        return new Fp8KernelStats(maxAbs, maxQuotient);
    }
}
