namespace ModelOptPS.Engine.Verification;

/// <summary>Source against dequantized values over part or all of a weight: error energy and bound violations.</summary>
internal struct ErrorTally
{
    public long Elements;
    public long Violations;
    public double SourceSquares;
    public double ErrorSquares;

    /// <summary>max |w| of the source (exact: a value of the source's type).</summary>
    public float SourceAmax;

    public long FirstRow;
    public long FirstColumn;
    public double FirstSource;
    public double FirstDequantized;
    public double FirstBound;

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
        SourceAmax = Math.Max(SourceAmax, later.SourceAmax);
    }
}
