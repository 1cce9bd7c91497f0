using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>
/// ModelOpt's nvfp4_act_headroom on histograms with a known answer, and against an independent order-statistic
/// computation on random activations.
/// </summary>
public sealed class HeadroomCalibratorTests
{
    /// <summary>Rows of 16 values whose block amax is 2^k (the other values smaller), one row per block.</summary>
    private static Tensor Blocks(params (int Log2, int Count)[] blocks)
    {
        var values = new List<float>();
        foreach (var (log2, count) in blocks)
            for (int i = 0; i < count; i++)
                for (int j = 0; j < 16; j++)
                    values.Add((j % 2 == 0 ? -1 : 1) * MathF.ScaleB(1f, log2) * (j == 5 ? 1f : 0.25f));
        return tensor(values.ToArray()).reshape(-1, 16);
    }

    /// <summary>The bin centre ModelOpt returns for a value 2^k: floor((k + 40) / 80 * 512), centre at +0.5.</summary>
    private static double Centre(int log2)
    {
        int bin = (int)Math.Floor((log2 + 40) / 80.0 * 512);
        return Math.Pow(2, -40 + (bin + 0.5) * 80 / 512.0);
    }

    [Fact]
    public void KnownHistogramGivesTheAnchorTimesRhoWithZerosAndBlocksBelowTheFloorIgnored()
    {
        var histogram = new BlockAmaxHistogram("x.input_quantizer");
        using (var scope = NewDisposeScope())
        {
            // 3 blocks at 2^-30 lie below upper / 1e6 and must not be the anchor; zero blocks are not counted at all.
            histogram.Collect(Blocks((-30, 3), (-8, 2)));
            histogram.Collect(Blocks((0, 196), (4, 2)));
            histogram.Collect(zeros(5, 16));
        }
        Assert.Equal(203, histogram.Counts.Sum());
        Assert.Equal(16f, histogram.Max);
        int bin = (int)Math.Floor((-8 + 40) / 80.0 * 512); // 204
        Assert.Equal(2, histogram.Counts[bin]);

        // upper: 99.99% of 203 = 202.98 -> the 203rd block, 2^4. anchor: of the 200 above the floor, 1% = 2 -> 2^-8.
        Assert.Equal(Centre(4), HeadroomCalibrator.Percentile(histogram.Counts, 99.99));
        Assert.Equal(Centre(-8), HeadroomCalibrator.Percentile(histogram.Counts, 1, Centre(4) / 1e6));
        Assert.Equal(Centre(-30), HeadroomCalibrator.Percentile(histogram.Counts, 1));
        Assert.Equal(Centre(0), HeadroomCalibrator.Percentile(histogram.Counts, 50));
        Assert.Equal((float)(16384 * Centre(-8)), HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default));
        Assert.Equal(Math.Pow(2, 14 - 40 + 204.5 * 80 / 512), HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default)!.Value, 1e-4);

        // upper_percentile 100 is the literal max; a small rho leaves no headroom, so the amax is the upper percentile.
        Assert.Equal((float)(16384 * Centre(-8)), HeadroomCalibrator.Amax(histogram, new HeadroomSettings { UpperPercentile = 100 }));
        Assert.Equal((float)Centre(4), HeadroomCalibrator.Amax(histogram, new HeadroomSettings { Rho = 4 }));
        Assert.Equal(16f, HeadroomCalibrator.Amax(histogram, new HeadroomSettings { Rho = 4, UpperPercentile = 100 }));
        Assert.Equal(new HeadroomAmax((float)(16384 * Centre(-8)), Centre(-8), Centre(4), FellBackToMax: false, NoHeadroom: false),
            HeadroomCalibrator.Compute(histogram, HeadroomSettings.Default));
        Assert.True(HeadroomCalibrator.Compute(histogram, new HeadroomSettings { Rho = 4 })!.Value.NoHeadroom);
    }

    [Fact]
    public void RaggedWidthsArePaddedAndEmptyOrZeroHistogramsFallBackToTheMax()
    {
        var histogram = new BlockAmaxHistogram("x.input_quantizer");
        Assert.Null(HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default));
        using (var scope = NewDisposeScope())
            histogram.Collect(zeros(3, 20));
        Assert.Equal(0, histogram.Counts.Sum());
        Assert.Equal(0f, HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default));
        Assert.True(HeadroomCalibrator.Compute(histogram, HeadroomSettings.Default)!.Value.FellBackToMax);

        using (var scope = NewDisposeScope())
        {
            var values = new float[2 * 20];
            values[3] = 0.5f;   // row 0, block 0
            values[17] = -8f;   // row 0, block 1 (columns 16..19, padded with zeros)
            values[20 + 19] = 2f; // row 1, block 1
            histogram.Collect(tensor(values).reshape(2, 20));
        }
        Assert.Equal(3, histogram.Counts.Sum());
        Assert.Equal(8f, histogram.Max);
        Assert.Equal(1, histogram.Counts[(int)Math.Floor((-1 + 40) / 80.0 * 512)]);
        Assert.Equal(1, histogram.Counts[(int)Math.Floor((3 + 40) / 80.0 * 512)]);
    }

    [Fact]
    public void NonFiniteActivationsAndOutOfRangeSettingsAreRefused()
    {
        var histogram = new BlockAmaxHistogram("model.layers.0.mlp.down_proj.input_quantizer");
        using (var scope = NewDisposeScope())
        {
            var error = Assert.Throws<ModelOptException>(() => histogram.Collect(tensor(new[] { 1f, float.NaN }).reshape(1, 2)));
            Assert.Equal(CalibrationErrorIds.NonFiniteActivation, error.ErrorId);
            Assert.Contains("down_proj", error.Message);
        }
        foreach (var bad in new[] { new HeadroomSettings { Rho = 28672 }, new HeadroomSettings { Rho = 0 },
                     new HeadroomSettings { AnchorPercentile = 0 }, new HeadroomSettings { UpperPercentile = 100.5 } })
        {
            var error = Assert.Throws<ModelOptException>(() => bad.Validated());
            Assert.Equal(CalibrationErrorIds.InvalidHeadroomSettings, error.ErrorId);
            Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        }
    }

    [Theory]
    [InlineData(1, 1000, 64)]
    [InlineData(2, 3000, 72)]   // 72 columns: a ragged last block
    [InlineData(3, 50, 4096)]
    public void RandomActivationsMatchAnIndependentOrderStatistic(int seed, int rows, int columns)
    {
        var random = new Random(seed);
        // Magnitudes spread over many octaves (log-uniform), some rows tiny, a few outliers.
        float[] values = new float[rows * columns];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)((random.NextDouble() < 0.5 ? -1 : 1) * Math.Pow(2, random.NextDouble() * 24 - 16) * (random.NextDouble() < 1e-4 ? 1e4 : 1));
        for (int c = 0; c < columns; c++) values[7 * columns + c] = 0;

        var histogram = new BlockAmaxHistogram("x");
        using (var scope = NewDisposeScope())
            for (int start = 0; start < rows; start += 100) // in batches, as calibration feeds it
                histogram.Collect(tensor(values[(start * columns)..(Math.Min(rows, start + 100) * columns)]).reshape(-1, columns));

        // Independent: block amaxes in plain loops, sorted; a percentile is the bin of the ceil(p% · n)-th smallest.
        var amax = new List<double>();
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < columns; b += 16)
            {
                double m = 0;
                for (int c = b; c < Math.Min(columns, b + 16); c++) m = Math.Max(m, Math.Abs(values[r * columns + c]));
                amax.Add(m);
            }
        static int Bin(double v) => (int)Math.Clamp(Math.Floor((Math.Log2(v) + 40) / 80 * 512), 0, 511);
        static double Value(int bin) => Math.Pow(2, -40 + (bin + 0.5) * 80 / 512);
        static double At(List<double> sorted, double p) => Value(Bin(sorted[(int)Math.Ceiling(p / 100 * sorted.Count) - 1]));
        var nonzero = amax.Where(v => v > 0).Order().ToList();
        Assert.Equal(nonzero.Count, histogram.Counts.Sum());
        Assert.Equal((float)nonzero[^1], histogram.Max);
        double upper = At(nonzero, 99.99);
        var aboveFloor = nonzero.Where(v => Bin(v) >= Bin(upper / 1e6)).ToList();
        double anchor = At(aboveFloor, 1);
        Assert.Equal(upper, HeadroomCalibrator.Percentile(histogram.Counts, 99.99));
        Assert.Equal(anchor, HeadroomCalibrator.Percentile(histogram.Counts, 1, upper / 1e6));
        Assert.Equal((float)Math.Max(16384 * anchor, upper), HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default));
        // A bin centre is within half a bin (2^(80/1024)) of the exact order statistic.
        double exact = nonzero[(int)Math.Ceiling(0.9999 * nonzero.Count) - 1];
        Assert.InRange(upper / exact, Math.Pow(2, -80 / 1024.0), Math.Pow(2, 80 / 1024.0));
    }
}
