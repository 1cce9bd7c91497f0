using System.Buffers.Binary;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>How the verifier reads a packed weight: as the contract lays it out, or as a known mix-up would.</summary>
internal enum WeightLayout
{
    /// <summary>Even column in the low nibble; block scales row-major [out, in/16].</summary>
    Contract,

    /// <summary>Even column in the high nibble.</summary>
    NibblesSwapped,

    /// <summary>Block scale of [r, b] stored at b × out + r.</summary>
    ScalesTransposed,
}

/// <summary>
/// Dequantizes an NVFP4 weight row by row from its memory-mapped tensors and compares every element with the source
/// under <see cref="ErrorBound"/>. Only a row band of each tensor is touched at a time; large weights are split into
/// row bands checked in parallel.
/// </summary>
internal static class BoundCheck
{
    private const long ParallelElements = 1 << 20;

    /// <summary>
    /// The error of <paramref name="weight"/> against <paramref name="source"/> read with <paramref name="layout"/>.
    /// With <paramref name="stopAtFirstViolation"/> it stops at the first violation (to test a guess cheaply).
    /// </summary>
    public static ErrorTally Measure(SourceSlice source, QuantizedModule weight, WeightLayout layout, bool stopAtFirstViolation,
        CancellationToken cancellationToken) =>
        InBands(weight.Rows, weight.Cols, (first, last) => MeasureRows(source, weight, layout, first, last, stopAtFirstViolation),
            stopAtFirstViolation, cancellationToken);

    /// <summary>
    /// Runs <paramref name="measureRows"/> (rows [first, last)) over row bands of about a million elements, in parallel
    /// unless <paramref name="stopAtFirstViolation"/>, and adds the tallies in row order.
    /// </summary>
    public static ErrorTally InBands(int rows, int cols, Func<int, int, ErrorTally> measureRows, bool stopAtFirstViolation,
        CancellationToken cancellationToken)
    {
        int rowsPerBand = (int)Math.Max(1, ParallelElements / Math.Max(1, cols));
        int bands = (rows + rowsPerBand - 1) / rowsPerBand;
        var tallies = new ErrorTally[bands];
        void Band(int band)
        {
            int first = band * rowsPerBand, last = Math.Min(rows, first + rowsPerBand);
            tallies[band] = measureRows(first, last);
        }
        if (stopAtFirstViolation || bands == 1)
        {
            for (int band = 0; band < bands; band++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Band(band);
                if (stopAtFirstViolation && tallies[band].Violations > 0) break;
            }
        }
        else
        {
            ParallelFailures.Run(() => Parallel.For(0, bands, new ParallelOptions { CancellationToken = cancellationToken }, Band));
        }
        var total = new ErrorTally();
        foreach (var tally in tallies) total.Add(tally);
        return total;
    }

    private static ErrorTally MeasureRows(SourceSlice source, QuantizedModule weight, WeightLayout layout, int first, int last, bool stopAtFirst)
    {
        var tally = new ErrorTally();
        int cols = weight.Cols, blocks = cols / Nvfp4.BlockSize;
        int rowBytes = cols * DTypes.SizeOf(source.DType);
        var transposed = new byte[layout == WeightLayout.ScalesTransposed ? blocks : 0];
        for (int row = first; row < last && !(stopAtFirst && tally.Violations > 0); row++)
        {
            using var values = source.Read((long)row * rowBytes, rowBytes);
            using var packed = weight.Packed.File.Read(weight.Packed.Info, (long)row * (cols / 2), cols / 2);
            using var stored = layout == WeightLayout.ScalesTransposed
                ? weight.BlockScales.File.Read(weight.BlockScales.Info)
                : weight.BlockScales.File.Read(weight.BlockScales.Info, (long)row * blocks, blocks);
            ReadOnlySpan<byte> scales = stored.Span;
            if (layout == WeightLayout.ScalesTransposed)
            {
                for (int b = 0; b < blocks; b++) transposed[b] = stored.Span[b * weight.Rows + row];
                scales = transposed;
            }
            AccumulateRow(values.Span, source.DType, packed.Span, scales, weight.WeightScale2, layout == WeightLayout.NibblesSwapped, row, ref tally);
        }
        return tally;
    }

    /// <summary>
    /// One row: decode each element as E2M1[code] × block_scale × weight_scale_2 (nvfp4-numerics.md step 7, in double
    /// so the check adds no rounding of its own) and compare with the source element under <see cref="ErrorBound.Bound"/>;
    /// per block, also note whether its scale is the source block's max scale and what rounding the source at the stored
    /// scale would cost, for the GPTQ allowance (<see cref="ErrorTally.Passes(bool)"/>).
    /// </summary>
    public static void AccumulateRow(ReadOnlySpan<byte> source, DType dtype, ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales,
        double weightScale2, bool nibblesSwapped, long row, ref ErrorTally tally)
    {
        for (int block = 0; block < scales.Length; block++)
        {
            byte scaleByte = scales[block];
            double scale = E4M3.ToFloat(scaleByte) * weightScale2;
            float blockAmax = 0;
            for (int i = 0; i < Nvfp4.BlockSize; i++)
            {
                int column = block * Nvfp4.BlockSize + i;
                bool high = ((column & 1) == 1) != nibblesSwapped;
                int code = high ? packed[column >> 1] >> 4 : packed[column >> 1] & 0xF;
                float w = Read(source, dtype, column);
                double dequantized = E2M1.Decode(code) * scale;
                double error = w - dequantized;
                tally.SourceSquares += (double)w * w;
                tally.ErrorSquares += error * error;
                tally.RoundingSquares += ErrorBound.RoundingSquare(w, scale);
                blockAmax = Math.Max(blockAmax, Math.Abs(w));
                double bound = ErrorBound.Bound(code, scale, w);
                if (Math.Abs(error) > bound) tally.Violation(row, column, w, dequantized, bound);
            }
            tally.SourceAmax = Math.Max(tally.SourceAmax, blockAmax);
            if (ErrorBound.IsMaxScale(scaleByte, blockAmax, weightScale2)) tally.MaxScaleBlocks++;
        }
        tally.Blocks += scales.Length;
        tally.Elements += scales.Length * Nvfp4.BlockSize;
    }

    /// <summary>Element <paramref name="index"/> of little-endian BF16, F16 or F32 data as an exact fp32.</summary>
    public static float Read(ReadOnlySpan<byte> data, DType dtype, int index) => dtype switch
    {
        DType.BF16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(data[(index * 2)..]) << 16),
        DType.F16 => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(data[(index * 2)..])),
        _ => BinaryPrimitives.ReadSingleLittleEndian(data[(index * 4)..]),
    };
}
