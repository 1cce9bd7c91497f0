namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The block diagonal of one weight unit's input Hessian H = XᵀX / N (local Hessian's loss dwᵀ H_b dw per 16-wide input
/// block). <see cref="Sums"/> keeps Σ XᵀX in float64 and N = <see cref="Tokens"/>, the rows (tokens) that reached the
/// unit, so statistics of disjoint token sets add up exactly (<see cref="Plus"/>); <see cref="Blocks"/> is what the
/// search reads: Sums / N as float32 [Columns/16, 16, 16], block b covering input columns [16b, 16b+16), row-major.
/// </summary>
public sealed class HessianBlocks
{
    private const int BlockValues = HessianAccumulator.BlockSize * HessianAccumulator.BlockSize;

    public HessianBlocks(double[] sums, long tokens, int columns)
    {
        if (columns % HessianAccumulator.BlockSize != 0 || sums.Length != (long)columns * HessianAccumulator.BlockSize)
            throw new ArgumentException($"{sums.Length} values are not the 16x16 blocks of {columns} columns", nameof(sums));
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        Sums = sums;
        Tokens = tokens;
        Columns = columns;
        // Division in float64 (correctly rounded), then one rounding to float32: the same blocks wherever the sums come from.
        double n = Math.Max(tokens, 1);
        Blocks = Array.ConvertAll(sums, s => (float)(s / n));
    }

    /// <summary>Σ XᵀX over the tokens, float64, same layout as <see cref="Blocks"/>.</summary>
    public double[] Sums { get; }

    /// <summary>XᵀX / N as float32; all zeros when no token arrived.</summary>
    public float[] Blocks { get; }

    public long Tokens { get; }

    public int Columns { get; }

    /// <summary>Block b as a span of 256 values (row-major 16x16).</summary>
    public ReadOnlySpan<float> Block(int b) => Blocks.AsSpan(b * BlockValues, BlockValues);

    /// <summary>The blocks of both token sets together: sums and token counts add.</summary>
    public HessianBlocks Plus(HessianBlocks other)
    {
        if (other.Columns != Columns)
            throw new ArgumentException($"Hessian blocks of {other.Columns} columns cannot be added to blocks of {Columns} columns", nameof(other));
        var sums = new double[Sums.Length];
        for (int i = 0; i < sums.Length; i++) sums[i] = Sums[i] + other.Sums[i];
        return new HessianBlocks(sums, Tokens + other.Tokens, Columns);
    }
}
