using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Accumulates Σ XᵀX over the 16x16 diagonal blocks of one weight unit's input, batch by batch. Each batch's blocks are
/// one batched float32 matmul ([C/16, 16, N] × [C/16, N, 16]); the running sum is float64, so rounding does not grow with
/// the number of batches (millions of tokens) and the result is deterministic for the same batches in the same order.
/// Memory: C × 16 doubles, whatever the token count.
/// </summary>
public sealed class HessianAccumulator : IDisposable
{
    public const int BlockSize = 16;

    private readonly Tensor _sum;

    public HessianAccumulator(long columns, Device device)
    {
        if (columns % BlockSize != 0) throw new ArgumentException($"{columns} input columns are not a multiple of {BlockSize}", nameof(columns));
        Columns = (int)columns;
        // Created inside the runner's per-layer scope but lives for the whole run: owned here, freed by Dispose.
        _sum = zeros([columns / BlockSize, BlockSize, BlockSize], ScalarType.Float64, device).DetachFromDisposeScope();
    }

    public int Columns { get; }

    /// <summary>Rows accumulated so far (N).</summary>
    public long Tokens { get; private set; }

    /// <summary>Adds the rows of <paramref name="x"/> [..., Columns].</summary>
    public void Add(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor rows = x.reshape(-1, Columns).to(ScalarType.Float32);
        long n = rows.shape[0];
        if (n == 0) return;
        Tensor blocks = rows.reshape(n, Columns / BlockSize, BlockSize).permute(1, 0, 2);
        _sum.add_(blocks.transpose(1, 2).bmm(blocks).to(ScalarType.Float64), Scalars.One);
        Tokens += n;
    }

    /// <summary>The float64 sums and the token count (<see cref="HessianBlocks"/> derives XᵀX / N from them).</summary>
    public HessianBlocks ToBlocks()
    {
        using var scope = NewDisposeScope();
        double[] sums = _sum.cpu().contiguous().data<double>().ToArray();
        return new HessianBlocks(sums, Tokens, Columns);
    }

    public void Dispose() => _sum.Dispose();
}
