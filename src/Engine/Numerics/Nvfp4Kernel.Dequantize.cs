using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>Fast dequantization (step 7), same values as <see cref="Nvfp4Reference.Dequantize"/>.</summary>
internal static unsafe partial class Nvfp4Kernel
{
    /// <summary>Writes rows·cols fp32 values: E2M1[code] × fl32(fp32(scale) × wsf2).</summary>
    public static void Dequantize(
        ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales, float weightScale2, int rows, int cols, Span<float> destination, KernelPath path)
    {
        path = KernelPaths.Resolve(path);
        long blocksPerRow = cols / Nvfp4.BlockSize;
        int rowsPerChunk = Math.Max(1, ChunkElements / cols);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        fixed (byte* pk = packed, sc = scales)
        fixed (float* dst = destination)
        {
            if (chunks <= 1)
            {
                DequantizeBlocks(path, pk, sc, weightScale2, 0, (nint)(rows * blocksPerRow), dst);
                return;
            }

            nint p = (nint)pk, q = (nint)sc, d = (nint)dst;
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long firstRow = (long)chunk * rowsPerChunk;
                long endRow = Math.Min(rows, firstRow + rowsPerChunk);
                DequantizeBlocks(
                    path, (byte*)p, (byte*)q, weightScale2, (nint)(firstRow * blocksPerRow), (nint)((endRow - firstRow) * blocksPerRow), (float*)d);
            }));
        }
    }

    private static void DequantizeBlocks(KernelPath path, byte* packed, byte* scales, float weightScale2, nint firstBlock, nint blockCount, float* destination)
    {
        nint end = firstBlock + blockCount;
        if (path == KernelPath.Vector512)
        {
            Vector512<float> table = Vector512.Create(E2M1.Values);
            for (nint b = firstBlock; b < end; b++)
            {
                var blockScale = Vector512.Create(E4M3.ToFloat(scales[b]) * weightScale2);

                // VPMOVZXBQ spreads the 8 packed bytes over 8 ulong lanes; low nibble into the lane's low uint (code 2k),
                // high nibble into its high uint (code 2k+1); VPERMPS then looks the 16 codes up in the value table.
                Vector512<ulong> lanes = Avx512F.ConvertToVector512UInt64(Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(packed + b * 8)).AsByte());
                Vector512<int> codes = ((lanes & Vector512.Create(0xFUL)) | ((lanes >> 4) << 32)).AsInt32();
                (Avx512F.PermuteVar16x32(table, codes) * blockScale).Store(destination + b * 16);
            }

            return;
        }

        for (nint b = firstBlock; b < end; b++)
        {
            float blockScale = E4M3.ToFloat(scales[b]) * weightScale2;
            for (int k = 0; k < 8; k++)
            {
                byte pair = packed[b * 8 + k];
                destination[b * 16 + 2 * k] = E2M1.Decode(pair & 0xF) * blockScale;
                destination[b * 16 + 2 * k + 1] = E2M1.Decode(pair >> 4) * blockScale;
            }
        }
    }
}
