namespace ModelOptPS.Engine.Verification;

/// <summary>Source against dequantized values over part or all of a weight: error energy and bound violations.</summary>
internal struct ErrorTally
{
    public long Elements;
    public long Violations;
    public double SourceSquares;
    public double ErrorSquares;

    /// <summary>NVFP4: Σ of the squared error of rounding the source to the nearest code at the stored block scales.</summary>
    public double RoundingSquares;

    /// <summary>NVFP4: blocks checked, and those whose stored scale is the max scale of the source block.</summary>
    public long Blocks;

    public long MaxScaleBlocks;

    /// <summary>max |w| of the source (exact: a value of the source's type).</summary>
    public float SourceAmax;

    public long FirstRow;
    public long FirstColumn;
    public double FirstSource;
    public double FirstDequantized;
    public double FirstBound;

    /// <summary>
    /// The verdict: no value beyond <see cref="ErrorBound"/>; or, where re-rounded codes are allowed (an export whose
    /// manifest says GPTQ, or a checkpoint from another producer), codes that round updated weights as GPTQ's do: every
    /// block at its source block's max scale and an error energy within <see cref="ErrorBound.ReroundedErrorFactor"/>²
    /// times that of rounding the source at those scales.
    /// </summary>
    public readonly bool Passes(bool reroundedCodesAllowed) => Violations == 0 || (reroundedCodesAllowed && IsGptqLike);

    /// <summary>True when the values beyond the bound are explained as GPTQ's re-rounding (see <see cref="Passes"/>).</summary>
    public readonly bool IsGptqLike => Violations > 0 && Blocks > 0 && MaxScaleBlocks == Blocks &&
        ErrorSquares <= ErrorBound.ReroundedErrorFactor * ErrorBound.ReroundedErrorFactor * RoundingSquares * (1 + 1e-9);

    public readonly double? RelativeRmsError =>
        SourceSquares > 0 ? Math.Sqrt(ErrorSquares / SourceSquares) : ErrorSquares == 0 ? 0 : null;

    public readonly double? SqnrDb =>
        SourceSquares > 0 ? (ErrorSquares == 0 ? double.PositiveInfinity : 10 * Math.Log10(SourceSquares / ErrorSquares)) : null;

    public void Violation(long row, long column, double source, double dequantized, double bound)
    {
        if (Violations++ > 0) return;
        FirstRow = row;
        FirstColumn = column;
        FirstSource = source;
        FirstDequantized = dequantized;
        FirstBound = bound;
    }

    /// <summary>Adds a tally of later rows (so the first violation stays the first in row order).</summary>
    public void Add(in ErrorTally later)
    {
        if (Violations == 0 && later.Violations > 0)
        {
            FirstRow = later.FirstRow;
            FirstColumn = later.FirstColumn;
            FirstSource = later.FirstSource;
            FirstDequantized = later.FirstDequantized;
            FirstBound = later.FirstBound;
        }
        Elements += later.Elements;
        Violations += later.Violations;
        SourceSquares += later.SourceSquares;
        ErrorSquares += later.ErrorSquares;
        RoundingSquares += later.RoundingSquares;
        Blocks += later.Blocks;
        MaxScaleBlocks += later.MaxScaleBlocks;
        SourceAmax = Math.Max(SourceAmax, later.SourceAmax);
    }
}
