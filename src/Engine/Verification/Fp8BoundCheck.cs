using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Dequantizes an FP8 per-tensor weight row by row from its memory map (fp32(e4m3) × weight_scale) and compares every
/// element with the source under <see cref="Fp8ErrorBound"/>, in row bands like <see cref="BoundCheck"/>.
/// </summary>
internal static class Fp8BoundCheck
{
    public static ErrorTally Measure(SourceSlice source, Fp8Module weight, bool stopAtFirstViolation, CancellationToken cancellationToken)
    {
        var bound = new Fp8ErrorBound(weight.WeightScale!.Value, source.DType);
        return BoundCheck.InBands(weight.Rows, weight.Cols, (first, last) => MeasureRows(source, weight, bound, first, last, stopAtFirstViolation),
            stopAtFirstViolation, cancellationToken);
    }

    private static ErrorTally MeasureRows(SourceSlice source, Fp8Module weight, Fp8ErrorBound bound, int first, int last, bool stopAtFirst)
    {
        var tally = new ErrorTally();
        int cols = weight.Cols, rowBytes = cols * DTypes.SizeOf(source.DType);
        for (int row = first; row < last && !(stopAtFirst && tally.Violations > 0); row++)
        {
            using var values = source.Read((long)row * rowBytes, rowBytes);
            using var codes = weight.Weight.File.Read(weight.Weight.Info, (long)row * cols, cols);
            var v = values.Span;
            var c = codes.Span;
            for (int column = 0; column < cols; column++)
            {
                float w = BoundCheck.Read(v, source.DType, column);
                double dequantized = bound.Dequantize(c[column]);
                double error = w - dequantized;
                double allowed = bound.Allowance(w, c[column]);
                tally.SourceSquares += (double)w * w;
                tally.ErrorSquares += error * error;
                tally.SourceAmax = Math.Max(tally.SourceAmax, Math.Abs(w));
                if (!(Math.Abs(error) <= allowed)) tally.Violation(row, column, w, dequantized, allowed); // NaN codes fail too
            }
            tally.Elements += cols;
        }
        return tally;
    }
}
