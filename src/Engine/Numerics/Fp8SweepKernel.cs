using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The NVFP4 block-scale search: for every 16-element block, the loss (<see cref="Nvfp4SearchLoss"/>) of all 126 FP8
/// candidates, then a <see cref="IBlockScaleChooser"/> picks the byte. SIMD paths hold one block in a vector and loop over
/// the candidates; work runs in parallel over chunks of rows; per call a few small tables are allocated, nothing per block.
/// <para>
/// Speed without changing a bit: the divisor of candidate <c>v = M·2^E</c> is <c>d = fl32(v·wsf2)</c>, and when
/// <c>d = 2^E·fl32(M·wsf2)</c> exactly (true unless wsf2 is near the fp32 subnormal range; checked per call in
/// <see cref="SweepTables"/>), <c>fl32(|w|/d) = fl32(|w|/fl32(M·wsf2))·2^-E</c> exactly wherever the quotient is a
/// normal number; where it is not, both sides are far below 0.25 (E2M1 code 0) or far above 5 (code 6). So 8 divisions
/// per weight replace 126. Otherwise every path falls back to the scalar definition.
/// </para>
/// </summary>
internal static unsafe partial class Fp8SweepKernel
{
    /// <summary>About this many elements per parallel work item: the sweep costs ~100× a quantization per element.</summary>
    private const int ChunkElements = 1 << 14;

    /// <summary>
    /// Writes one chosen E4M3 byte per block into <paramref name="scales"/>. <paramref name="hessian"/> is
    /// [cols/16, 16, 16] row-major or empty (MSE). Shapes and values are assumed validated.
    /// </summary>
    public static void Search<TChooser>(
        ReadOnlySpan<byte> source, DType dtype, int rows, int cols, float weightScale2, ReadOnlySpan<float> hessian, Span<byte> scales, KernelPath path)
        where TChooser : struct, IBlockScaleChooser
    {
        var tables = new SweepTables(weightScale2);
        path = tables.PowerOfTwoExact ? KernelPaths.Resolve(path) : KernelPath.Scalar;
        float[]? columns = Layout(hessian, path);
        int blocksPerRow = cols / Nvfp4.BlockSize;
        int rowsPerChunk = Math.Max(1, ChunkElements / cols);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        fixed (byte* src = source, sc = scales)
        fixed (float* h = columns)
        {
            nint s = (nint)src, q = (nint)sc, hp = (nint)h;
            var work = new BlockRange(tables, blocksPerRow, weightScale2);
            ParallelFailures.Run(() => Parallel.For(0, chunks, chunk =>
            {
                long firstRow = (long)chunk * rowsPerChunk;
                long endRow = Math.Min(rows, firstRow + rowsPerChunk);
                Run<TChooser>(path, dtype, (byte*)s, (float*)hp, work, (nint)(firstRow * blocksPerRow), (nint)((endRow - firstRow) * blocksPerRow), (byte*)q);
            }));
        }
    }

    /// <summary>The same on the calling thread only (the benchmark's per-core figure).</summary>
    public static void SearchSingleThreaded<TChooser>(
        ReadOnlySpan<byte> source, DType dtype, int rows, int cols, float weightScale2, ReadOnlySpan<float> hessian, Span<byte> scales, KernelPath path)
        where TChooser : struct, IBlockScaleChooser
    {
        var tables = new SweepTables(weightScale2);
        path = tables.PowerOfTwoExact ? KernelPaths.Resolve(path) : KernelPath.Scalar;
        float[]? columns = Layout(hessian, path);
        fixed (byte* src = source, sc = scales)
        fixed (float* h = columns)
        {
            Run<TChooser>(path, dtype, src, h, new BlockRange(tables, cols / Nvfp4.BlockSize, weightScale2), 0, (nint)((long)rows * (cols / Nvfp4.BlockSize)), sc);
        }
    }

    /// <summary>What every block of one call shares.</summary>
    private sealed record BlockRange(SweepTables Tables, int BlocksPerRow, float WeightScale2);

    private static void Run<TChooser>(KernelPath path, DType dtype, byte* src, float* hessian, BlockRange work, nint first, nint count, byte* scales)
        where TChooser : struct, IBlockScaleChooser
    {
        switch (path, dtype)
        {
            case (KernelPath.Vector512, DType.BF16): Blocks512<Bf16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (KernelPath.Vector512, DType.F16): Blocks512<F16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (KernelPath.Vector512, DType.F32): Blocks512<F32Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (KernelPath.Vector256, DType.BF16): Blocks256<Bf16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (KernelPath.Vector256, DType.F16): Blocks256<F16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (KernelPath.Vector256, DType.F32): Blocks256<F32Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (_, DType.BF16): BlocksScalar<Bf16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (_, DType.F16): BlocksScalar<F16Source, TChooser>(src, hessian, work, first, count, scales); break;
            case (_, DType.F32): BlocksScalar<F32Source, TChooser>(src, hessian, work, first, count, scales); break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype));
        }
    }

    /// <summary>The scalar path: the definition itself, one true division per weight and candidate (row-major H).</summary>
    private static void BlocksScalar<TSource, TChooser>(byte* src, float* hessian, BlockRange work, nint first, nint count, byte* scales)
        where TSource : struct, IWeightSource
        where TChooser : struct, IBlockScaleChooser
    {
        Span<float> block = stackalloc float[Nvfp4.BlockSize];
        Span<float> losses = stackalloc float[Fp8ScaleCandidates.Count];
        float[] divisors = work.Tables.Divisors;
        for (nint b = first; b < first + count; b++)
        {
            float blockAmax = 0f;
            for (int i = 0; i < Nvfp4.BlockSize; i++)
            {
                block[i] = TSource.Load(ref *src, b * Nvfp4.BlockSize + i);
                blockAmax = MathF.Max(blockAmax, MathF.Abs(block[i]));
            }

            ReadOnlySpan<float> h = hessian == null
                ? default
                : new ReadOnlySpan<float>(hessian + (b % work.BlocksPerRow) * Nvfp4.BlockSize * Nvfp4.BlockSize, Nvfp4.BlockSize * Nvfp4.BlockSize);
            for (int c = 0; c < Fp8ScaleCandidates.Count; c++)
            {
                losses[c] = Nvfp4SearchLoss.Block(block, divisors[c], h);
            }

            scales[b] = TChooser.Choose(losses, blockAmax, work.WeightScale2);
        }
    }

    /// <summary>H as the path reads it: the AVX2 path by columns, the others row-major (copied: the span cannot be pinned across the parallel loop's lambda).</summary>
    private static float[]? Layout(ReadOnlySpan<float> hessian, KernelPath path) =>
        hessian.IsEmpty ? null : path == KernelPath.Vector256 ? Columns(hessian) : hessian.ToArray();

    /// <summary>H per input block transposed to columns ([block][j][i] = H[block][i][j]): lane i of column j multiplies dw_j.</summary>
    private static float[] Columns(ReadOnlySpan<float> hessian)
    {
        var columns = new float[hessian.Length];
        const int n = Nvfp4.BlockSize;
        for (int block = 0; block < hessian.Length / (n * n); block++)
        {
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    columns[block * n * n + j * n + i] = hessian[block * n * n + i * n + j];
                }
            }
        }

        return columns;
    }
}
