using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// What ModelOpt's <c>NVFP4ActHeadroomCalibrator.collect</c> keeps for one NVFP4 input quantizer: the running max of
/// the per-block amaxes (= max |x|) and a histogram of log2(amax) of every nonzero 16-element block along the last
/// dimension (a ragged tail zero-padded), 512 bins evenly over log2 in [-40, 40), values outside clamped to the end
/// bins. Memory is the 512 counts, whatever the token count. Collection is a few libtorch ops on 1/16 of the tensor
/// after one block reduction, with the same float32 arithmetic as ModelOpt so every block lands in the same bin.
/// </summary>
public sealed class BlockAmaxHistogram
{
    public const int BlockSize = 16;
    public const int Bins = 512;
    public const float Log2Min = -40f;
    public const float Log2Max = 40f;

    private readonly string _quantizerName;
    private readonly long[] _counts = new long[Bins];

    public BlockAmaxHistogram(string quantizerName) => _quantizerName = quantizerName;

    /// <summary>A histogram as collected elsewhere (a statistics file): its <see cref="Bins"/> counts and its max.</summary>
    public BlockAmaxHistogram(string quantizerName, IReadOnlyList<long> counts, float? max)
        : this(quantizerName)
    {
        if (counts.Count != Bins) throw new ArgumentException($"{counts.Count} counts for a histogram of {Bins} bins", nameof(counts));
        for (int b = 0; b < Bins; b++) _counts[b] = counts[b];
        Max = max;
    }

    /// <summary>Blocks per log2 bin (zero blocks are not counted, as in ModelOpt).</summary>
    public IReadOnlyList<long> Counts => _counts;

    /// <summary>The largest block amax seen (max |x|), or null before the first value.</summary>
    public float? Max { get; private set; }

    /// <summary>ModelOpt's <c>_bin_index</c> for one value's log2, in float32 as torch computes it.</summary>
    public static int BinIndex(float log2Value)
    {
        float frac = (log2Value - Log2Min) / (Log2Max - Log2Min);
        float index = MathF.Floor(frac * Bins);
        return float.IsNaN(index) ? 0 : (int)Math.Clamp(index, 0f, Bins - 1);
    }

    /// <summary>The value a bin stands for: 2^(its centre), as ModelOpt reconstructs a percentile.</summary>
    public static double BinValue(int bin) => Math.Pow(2.0, Log2Min + (bin + 0.5) / Bins * (double)(Log2Max - Log2Min));

    /// <summary>The histogram of both value sets together: counts add, the max is the larger one.</summary>
    public BlockAmaxHistogram Plus(BlockAmaxHistogram other)
    {
        var sum = new BlockAmaxHistogram(_quantizerName, _counts, Max);
        for (int b = 0; b < Bins; b++) sum._counts[b] += other._counts[b];
        sum.Max = (Max, other.Max) switch
        {
            ({ } a, { } b) => Math.Max(a, b),
            var (a, b) => a ?? b,
        };
        return sum;
    }

    public void Collect(Tensor x)
    {
        if (x.numel() == 0) return;
        using var scope = NewDisposeScope();
        Tensor magnitude = x.abs();
        long remainder = x.shape[^1] % BlockSize;
        if (remainder != 0) magnitude = F.pad(magnitude, [0, BlockSize - remainder]);
        Tensor blockAmax = magnitude.reshape(-1, BlockSize).amax(1).to(ScalarType.Float32);
        float max = blockAmax.max().item<float>();
        if (!float.IsFinite(max)) throw MaxCalibrator.NonFinite(_quantizerName);
        Max = Max is { } m ? Math.Max(m, max) : max;

        // Same op order as ModelOpt's _bin_index ((log2 - min) / (max - min) * bins, floor, clamp); zero blocks, whose
        // log2 is -inf, go to an extra bin that is dropped.
        Tensor index = blockAmax.log2().sub(Scalars.Of((double)Log2Min)).div(Scalars.Of((double)(Log2Max - Log2Min)))
            .mul(Scalars.Of((double)Bins)).floor().clamp(Scalars.Of(0.0), Scalars.Of((double)(Bins - 1))).to(ScalarType.Int64);
        index.masked_fill_(blockAmax.eq(Scalars.Of(0.0)), Scalars.Of((long)Bins));
        long[] counts = index.bincount(null, Bins + 1).cpu().data<long>().ToArray();
        for (int b = 0; b < Bins; b++) _counts[b] += counts[b];
    }
}
