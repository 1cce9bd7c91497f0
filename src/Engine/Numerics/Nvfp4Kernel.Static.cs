using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Static NVFP4: spec steps 4-6 with block scales given (chosen by a search) instead of computed from block amaxes.
/// Same per-element arithmetic as the dynamic kernel: divisor <c>fl32(fp32(scale)·wsf2)</c>, true division, E2M1 rounding.
/// </summary>
internal static unsafe partial class Nvfp4Kernel
{
    /// <summary>
    /// Packs rows × cols weights with the given scale bytes (assumed validated). Returns the fp32 bit pattern of max |w|;
    /// a value ≥ 0x7F800000 means a NaN or Inf was present.
    /// </summary>
    public static uint QuantizeWithScales(
        ReadOnlySpan<byte> source, DType dtype, int rows, int cols, ReadOnlySpan<byte> scales, float weightScale2, Span<byte> packed, KernelPath path)
    {
        path = KernelPaths.Resolve(path);
        long blocksPerRow = cols / Nvfp4.BlockSize;
        int rowsPerChunk = Math.Max(1, ChunkElements / cols);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        var partial = new uint[Math.Max(1, chunks)];
        fixed (byte* src = source, pk = packed, sc = scales)
        {
            nint s = (nint)src, p = (nint)pk, q = (nint)sc;
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long firstRow = (long)chunk * rowsPerChunk;
                long endRow = Math.Min(rows, firstRow + rowsPerChunk);
                partial[chunk] = StaticBlocks(
                    path, dtype, (byte*)s, (nint)(firstRow * blocksPerRow), (nint)((endRow - firstRow) * blocksPerRow), (byte*)q, weightScale2, (byte*)p);
            }));
        }

        return partial.Max();
    }

    private static uint StaticBlocks(KernelPath path, DType dtype, byte* src, nint first, nint count, byte* scales, float weightScale2, byte* packed) =>
        (path, dtype) switch
        {
            (KernelPath.Vector512, DType.BF16) => StaticBlocks512<Bf16Source>(src, first, count, scales, weightScale2, packed),
            (KernelPath.Vector512, DType.F16) => StaticBlocks512<F16Source>(src, first, count, scales, weightScale2, packed),
            (KernelPath.Vector512, DType.F32) => StaticBlocks512<F32Source>(src, first, count, scales, weightScale2, packed),
            (KernelPath.Vector256, DType.BF16) => StaticBlocks256<Bf16Source>(src, first, count, scales, weightScale2, packed),
            (KernelPath.Vector256, DType.F16) => StaticBlocks256<F16Source>(src, first, count, scales, weightScale2, packed),
            (KernelPath.Vector256, DType.F32) => StaticBlocks256<F32Source>(src, first, count, scales, weightScale2, packed),
            (_, DType.BF16) => StaticBlocksScalar<Bf16Source>(src, first, count, scales, weightScale2, packed),
            (_, DType.F16) => StaticBlocksScalar<F16Source>(src, first, count, scales, weightScale2, packed),
            (_, DType.F32) => StaticBlocksScalar<F32Source>(src, first, count, scales, weightScale2, packed),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };

    private static uint StaticBlocksScalar<TSource>(byte* src, nint first, nint count, byte* scales, float weightScale2, byte* packed)
        where TSource : struct, IWeightSource
    {
        uint maxBits = 0;
        for (nint b = first; b < first + count; b++)
        {
            float divisor = E4M3.ToFloat(scales[b]) * weightScale2;
            for (int k = 0; k < Nvfp4.BlockSize / 2; k++)
            {
                float low = TSource.Load(ref *src, b * Nvfp4.BlockSize + 2 * k), high = TSource.Load(ref *src, b * Nvfp4.BlockSize + 2 * k + 1);
                maxBits = Math.Max(maxBits, Math.Max(BitConverter.SingleToUInt32Bits(low) & 0x7FFF_FFFFu, BitConverter.SingleToUInt32Bits(high) & 0x7FFF_FFFFu));
                packed[b * 8 + k] = (byte)(E2M1.Encode(low / divisor) | (E2M1.Encode(high / divisor) << 4));
            }
        }

        return maxBits;
    }

    private static uint StaticBlocks512<TSource>(byte* src, nint first, nint count, byte* scales, float weightScale2, byte* packed)
        where TSource : struct, IWeightSource
    {
        Vector512<uint> seen = Vector512<uint>.Zero;
        Vector512<uint> cellsLow = E2M1CellsLow, cellsHigh = E2M1CellsHigh;
        ref byte origin = ref *src;
        for (nint b = first; b < first + count; b++)
        {
            Vector512<float> w = TSource.Load16(ref origin, b * Nvfp4.BlockSize);
            seen = Vector512.Max(seen, w.AsUInt32() & Vector512.Create(0x7FFF_FFFFu));
            Vector128<ulong> bytes = PackedBlock(w / Vector512.Create(E4M3.ToFloat(scales[b]) * weightScale2), cellsLow, cellsHigh);
            Unsafe.WriteUnaligned(packed + b * 8, bytes.ToScalar());
        }

        return HorizontalMax(seen);
    }

    private static uint StaticBlocks256<TSource>(byte* src, nint first, nint count, byte* scales, float weightScale2, byte* packed)
        where TSource : struct, IWeightSource
    {
        Vector256<uint> seen = Vector256<uint>.Zero;
        ref byte origin = ref *src;
        for (nint b = first; b < first + count; b++)
        {
            Vector256<float> low = TSource.Load8(ref origin, b * Nvfp4.BlockSize), high = TSource.Load8(ref origin, b * Nvfp4.BlockSize + 8);
            var absMask = Vector256.Create(0x7FFF_FFFFu);
            seen = Vector256.Max(seen, Vector256.Max(low.AsUInt32() & absMask, high.AsUInt32() & absMask));
            var divisor = Vector256.Create(E4M3.ToFloat(scales[b]) * weightScale2);
            Unsafe.WriteUnaligned(packed + b * 8, PackedBlock(E2M1Codes(low / divisor).AsUInt64(), E2M1Codes(high / divisor).AsUInt64()));
        }

        return HorizontalMax(seen);
    }
}
