namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The block diagonal of one weight unit's input Hessian H = XᵀX / N (local Hessian's loss dwᵀ H_b dw per 16-wide input
/// block): <see cref="Blocks"/> is float32 [Columns/16, 16, 16], block b covering input columns [16b, 16b+16),
/// row-major; N = <see cref="Tokens"/>, the rows (tokens) that reached the unit.
/// </summary>
public sealed class HessianBlocks
{
    public HessianBlocks(float[] blocks, long tokens, int columns)
    {
        if (columns % HessianAccumulator.BlockSize != 0 || blocks.Length != columns * HessianAccumulator.BlockSize)
            throw new ArgumentException($"{blocks.Length} values are not the 16x16 blocks of {columns} columns", nameof(blocks));
        Blocks = blocks;
        Tokens = tokens;
        Columns = columns;
    }

    public float[] Blocks { get; }

    public long Tokens { get; }

    public int Columns { get; }

    /// <summary>Block b as a span of 256 values (row-major 16x16).</summary>
    public ReadOnlySpan<float> Block(int b) =>
        Blocks.AsSpan(b * HessianAccumulator.BlockSize * HessianAccumulator.BlockSize, HessianAccumulator.BlockSize * HessianAccumulator.BlockSize);
}
