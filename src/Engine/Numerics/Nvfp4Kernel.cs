using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The fast NVFP4 quantizer: the same arithmetic as <see cref="Nvfp4Reference"/>, on SIMD vectors, in parallel over
/// chunks of rows. A tensor is a flat run of 16-element blocks (cols is a multiple of 16, so no block straddles a row)
/// and its scales and packed bytes are flat runs too, so each chunk of rows is a contiguous range of blocks.
/// Nothing is allocated per row or per element: per call one closure and one small array of per-chunk results.
/// </summary>
internal static unsafe partial class Nvfp4Kernel
{
    /// <summary>About this many elements per parallel work item (512 KiB of BF16): small enough to balance, big enough to amortise.</summary>
    private const int ChunkElements = 1 << 18;

    /// <summary>
    /// Quantizes <paramref name="rows"/> × <paramref name="cols"/> elements with a given <c>weight_scale_2</c> into
    /// <paramref name="packed"/> (rows·cols/2 bytes) and <paramref name="scales"/> (rows·cols/16 bytes). Shapes are
    /// assumed validated. Returns the fp32 bit pattern of max |w| over the tensor; a value ≥ 0x7F800000 means a NaN or
    /// Inf was present (and the output is then meaningless).
    /// </summary>
    public static uint Quantize(
        ReadOnlySpan<byte> source, DType dtype, int rows, int cols, float weightScale2, Span<byte> packed, Span<byte> scales, KernelPath path)
    {
        path = KernelPaths.Resolve(path);
        long blocksPerRow = cols / Nvfp4.BlockSize;
        int rowsPerChunk = Math.Max(1, ChunkElements / cols);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        fixed (byte* src = source, pk = packed, sc = scales)
        {
            if (chunks <= 1)
            {
                return rows == 0 ? 0u : RunBlocks(path, dtype, src, 0, (nint)(rows * blocksPerRow), weightScale2, pk, sc);
            }

            var partial = new uint[chunks];
            nint s = (nint)src, p = (nint)pk, q = (nint)sc;
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long firstRow = (long)chunk * rowsPerChunk;
                long endRow = Math.Min(rows, firstRow + rowsPerChunk);
                partial[chunk] = RunBlocks(
                    path, dtype, (byte*)s, (nint)(firstRow * blocksPerRow), (nint)((endRow - firstRow) * blocksPerRow), weightScale2, (byte*)p, (byte*)q);
            }));

            uint max = 0;
            foreach (uint bits in partial)
            {
                max = Math.Max(max, bits);
            }

            return max;
        }
    }

    /// <summary>The same work on the calling thread only (for the benchmark's per-core figure).</summary>
    public static uint QuantizeSingleThreaded(
        ReadOnlySpan<byte> source, DType dtype, int rows, int cols, float weightScale2, Span<byte> packed, Span<byte> scales, KernelPath path)
    {
        fixed (byte* src = source, pk = packed, sc = scales)
        {
            return RunBlocks(KernelPaths.Resolve(path), dtype, src, 0, (nint)((long)rows * (cols / Nvfp4.BlockSize)), weightScale2, pk, sc);
        }
    }

    private static uint RunBlocks(
        KernelPath path, DType dtype, byte* src, nint firstBlock, nint blockCount, float weightScale2, byte* packed, byte* scales) =>
        (path, dtype) switch
        {
            (KernelPath.Vector512, DType.BF16) => Blocks512<Bf16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (KernelPath.Vector512, DType.F16) => Blocks512<F16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (KernelPath.Vector512, DType.F32) => Blocks512<F32Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (KernelPath.Vector256, DType.BF16) => Blocks256<Bf16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (KernelPath.Vector256, DType.F16) => Blocks256<F16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (KernelPath.Vector256, DType.F32) => Blocks256<F32Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (_, DType.BF16) => BlocksScalar<Bf16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (_, DType.F16) => BlocksScalar<F16Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            (_, DType.F32) => BlocksScalar<F32Source>(src, firstBlock, blockCount, weightScale2, packed, scales),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };

    /// <summary>The scalar fallback: the reference itself, block by block, plus the max-|w| bookkeeping.</summary>
    private static uint BlocksScalar<TSource>(byte* src, nint firstBlock, nint blockCount, float weightScale2, byte* packed, byte* scales)
        where TSource : struct, IWeightSource
    {
        Span<float> block = stackalloc float[Nvfp4.BlockSize];
        uint maxBits = 0;
        for (nint b = firstBlock; b < firstBlock + blockCount; b++)
        {
            for (int i = 0; i < Nvfp4.BlockSize; i++)
            {
                block[i] = TSource.Load(ref *src, b * Nvfp4.BlockSize + i);
                maxBits = Math.Max(maxBits, BitConverter.SingleToUInt32Bits(block[i]) & 0x7FFF_FFFFu);
            }

            scales[b] = Nvfp4Reference.QuantizeBlock(block, weightScale2, new Span<byte>(packed + b * 8, 8));
        }

        return maxBits;
    }
}
