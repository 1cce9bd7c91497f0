using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Moves test data between plain double arrays (the naive side) and float32 tensors (the engine side).</summary>
internal static class TensorData
{
    /// <summary>Random values rounded to float32, so both sides start from the same numbers.</summary>
    public static double[] Random(Random random, int count, double scale = 1.0) =>
        Enumerable.Range(0, count).Select(_ => (double)(float)((random.NextDouble() * 2 - 1) * scale)).ToArray();

    public static double[][] Random(Random random, int rows, int columns, double scale = 1.0) =>
        Enumerable.Range(0, rows).Select(_ => Random(random, columns, scale)).ToArray();

    public static Tensor Of(double[] values, params long[] shape) =>
        tensor(values.Select(v => (float)v).ToArray(), shape.Length == 0 ? [values.Length] : shape);

    public static Tensor Of(double[][] rows) => Of(rows.SelectMany(r => r).ToArray(), rows.Length, rows[0].Length);

    public static Tensor Of(double[][][] blocks) =>
        Of(blocks.SelectMany(b => b.SelectMany(r => r)).ToArray(), blocks.Length, blocks[0].Length, blocks[0][0].Length);

    public static double[] Flat(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray().Select(v => (double)v).ToArray();

    public static double[][] Rows(Tensor t)
    {
        double[] flat = Flat(t);
        int columns = (int)t.shape[^1];
        return Enumerable.Range(0, flat.Length / columns).Select(r => flat[(r * columns)..((r + 1) * columns)]).ToArray();
    }

    /// <summary>Largest |a − b| over all entries.</summary>
    public static double MaxDifference(double[][] a, double[][] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(a[i].Length, b[i].Length);
            for (int j = 0; j < a[i].Length; j++) max = Math.Max(max, Math.Abs(a[i][j] - b[i][j]));
        }
        return max;
    }

    public static double MaxAbs(double[][] a) => a.Max(r => r.Max(Math.Abs));
}
