using System.Runtime.InteropServices;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Checkpoint;

/// <summary>The scale benchmark's generator: seeded, independent of chunking and threads, weight-like values.</summary>
public class WeightLikeRowsTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static float[] Generate(FixtureTensor tensor, int seed, int rowsPerCall, Predicate<FixtureTensor>? evenRows = null)
    {
        int rows = (int)tensor.Shape[0], columns = (int)tensor.Shape[1];
        var bytes = new byte[rows * columns * 2];
        for (int row = 0; row < rows; row += rowsPerCall)
        {
            int n = Math.Min(rowsPerCall, rows - row);
            WeightLikeRows.Seeded(seed, evenRows)(tensor, row, bytes.AsSpan(row * columns * 2, n * columns * 2));
        }
        return MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray();
    }

    [Fact]
    public void Values_depend_on_seed_and_name_but_not_on_how_rows_are_chunked()
    {
        var tensor = new FixtureTensor("layers.0.mlp.up_proj.weight", [64, 256], Fill.Random);
        float[] whole = Generate(tensor, 7, 64);
        Assert.Equal(whole, Generate(tensor, 7, 5));
        Assert.Equal(whole, Generate(tensor, 7, 1));
        Assert.NotEqual(whole, Generate(tensor, 8, 64));
        Assert.NotEqual(whole, Generate(tensor with { Name = "layers.1.mlp.up_proj.weight" }, 7, 64));
    }

    [Fact]
    public void Random_rows_are_normal_with_spread_row_scales_and_rare_large_outliers()
    {
        const int rows = 256, columns = 8192;
        float[] values = Generate(new FixtureTensor("w", [rows, columns], Fill.Random), 1, 37);
        var stds = new double[rows];
        long outliers = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * columns, columns).ToArray();
            // The median absolute value of a normal is 0.6745 σ: a row scale the outliers cannot move.
            double sigma = row.Select(Math.Abs).Order().ElementAt(columns / 2) / 0.6745;
            stds[r] = sigma;
            Assert.InRange(row.Average(), -0.1 * sigma, 0.1 * sigma);
            outliers += row.Count(v => Math.Abs(v) > 8 * sigma); // a normal value beyond 8σ: ~1e-15
        }
        // Row scales 0.02·e^U(-1,1): within [0.02/e, 0.02·e], and spread over most of that range.
        Assert.All(stds, s => Assert.InRange(s, 0.02 / Math.E * 0.95, 0.02 * Math.E * 1.05));
        Assert.True(stds.Max() / stds.Min() > 5, $"row scales spread only {stds.Max() / stds.Min():F1}x");
        // 0.05% outliers × U(10, 50), of which P(|z|·U(10, 50) > 8) = 75% land beyond 8σ: a rate of 3.75e-4, ~790 values.
        double rate = outliers / (double)values.Length;
        Assert.InRange(rate, 0.0003, 0.00045);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Tensors_chosen_for_even_rows_get_one_row_scale()
    {
        const int rows = 64, columns = 8192;
        var router = new FixtureTensor("layers.0.mlp.gate.weight", [rows, columns], Fill.Random);
        float[] values = Generate(router, 1, 64, t => t.Name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal));
        for (int r = 0; r < rows; r++)
            Assert.InRange(values.AsSpan(r * columns, columns).ToArray().Select(Math.Abs).Order().ElementAt(columns / 2) / 0.6745, 0.018, 0.022);
        Assert.NotEqual(values, Generate(router, 1, 64));
    }

    [Fact]
    public void Norm_fills_are_exact_and_a_written_checkpoint_imports_and_is_the_same_for_any_chunk_size()
    {
        var ones = new byte[16 * 2];
        WeightLikeRows.Seeded(1)(new FixtureTensor("norm.weight", [16], Fill.Ones), 0, ones);
        Assert.All(MemoryMarshal.Cast<byte, ushort>(ones).ToArray(), b => Assert.Equal(0x3F80, b));
        var zeros = new byte[4 * 4];
        WeightLikeRows.Seeded(1)(new FixtureTensor("A_log", [4], Fill.Zeros, DType.F32), 0, zeros);
        Assert.All(zeros, b => Assert.Equal(0, b));

        var recipe = TinyCheckpoints.Create("qwen3_5_moe");
        string small = recipe.Write(_tmp.Combine("small"), WeightLikeRows.Seeded(3), 1_000_000, chunkBytes: 100);
        string large = recipe.Write(_tmp.Combine("large"), WeightLikeRows.Seeded(3), 1_000_000);
        var files = Directory.GetFiles(small).Select(Path.GetFileName).Order().ToArray();
        Assert.Contains(files, f => f!.EndsWith(".safetensors", StringComparison.Ordinal));
        Assert.Equal(files, Directory.GetFiles(large).Select(Path.GetFileName).Order().ToArray());
        foreach (string? file in files) Assert.Equal(File.ReadAllBytes(Path.Combine(small, file!)), File.ReadAllBytes(Path.Combine(large, file!)));
        using var model = ModelImporter.Import(small);
        Assert.Equal(recipe.Tensors.Count, model.TensorCount);
    }
}
