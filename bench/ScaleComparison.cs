using System.Text.Json;

namespace ModelOptPS.Bench;

/// <summary>
/// The scale benchmark at two sizes: with the results of another layer count in the output folder
/// (<c>scale-l&lt;N&gt;.json</c>, the newest other one calibrated on as many samples of the same length), each stage's peak memory at both sizes (flat means it does not grow
/// with the layers) and its time extrapolated to 40 layers through both points, T₄₀ = T_a + (T_b − T_a)·(40 − a)/(b − a),
/// which needs no assumption about how the fixed and per-layer costs split.
/// </summary>
internal static class ScaleComparison
{
    private sealed record Size(int Layers, string Calibration, Dictionary<string, (double Wall, long Anon, long File)> Stages, string Path);

    /// <summary>Prints the comparison and returns it for the JSON, or null when no other size was measured.</summary>
    public static object? Compare(string outputDirectory, int layers)
    {
        var current = Read(Path.Combine(outputDirectory, $"scale-l{layers}.json"))!;
        // Only a run that calibrated on the same samples × sequence length is comparable.
        var other = Directory.EnumerateFiles(outputDirectory, "scale-l*.json")
            .Select(Read).Where(s => s is not null && s.Layers != layers && s.Calibration == current.Calibration)
            .OrderByDescending(s => File.GetLastWriteTimeUtc(s!.Path)).FirstOrDefault();
        if (other is null) return null;
        var (a, b) = other.Layers < current.Layers ? (other, current) : (current, other);
        var rows = new List<string[]>();
        var stages = new List<object>();
        foreach (var (name, x) in a.Stages)
        {
            if (!b.Stages.TryGetValue(name, out var y)) continue;
            // The matmul peak does not depend on the checkpoint: nothing to extrapolate.
            double? at40 = name == ScaleStages.MatmulPeakStage ? null : x.Wall + (y.Wall - x.Wall) * (ScaleModel.RealLayers - a.Layers) / (b.Layers - a.Layers);
            rows.Add([name, $"{x.Anon / 1e6:F0} / {y.Anon / 1e6:F0} MB", $"{x.File / 1e6:F0} / {y.File / 1e6:F0} MB", $"{x.Wall:F1} / {y.Wall:F1}",
                at40 is { } t ? $"{t:F0}" : "-"]);
            stages.Add(new { stage = name, peak_anon_bytes = new[] { x.Anon, y.Anon }, peak_file_bytes = new[] { x.File, y.File },
                wall_seconds = new[] { x.Wall, y.Wall }, two_point_seconds_at_40_layers = at40 });
        }
        Console.WriteLine($"two sizes, {a.Layers} and {b.Layers} layers:");
        BenchContext.PrintTable(["stage", "peak anon", "peak file", "wall s", "s at 40 (2-point)"], rows);
        return new { layers = new[] { a.Layers, b.Layers }, stages };
    }

    private static Size? Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var root = document.RootElement;
        if (!root.TryGetProperty("checkpoint", out var checkpoint) || !root.TryGetProperty("stages", out var stages)
            || !root.TryGetProperty("calibration", out var calibration)) return null;
        string samples = $"{calibration.GetProperty("samples").GetInt32()} x {calibration.GetProperty("sequence_length").GetInt32()}";
        return new Size(checkpoint.GetProperty("layers").GetInt32(), samples, stages.EnumerateArray().ToDictionary(
            s => s.GetProperty("stage").GetString()!,
            s => (s.GetProperty("wall_seconds").GetDouble(), s.GetProperty("peak_anon_bytes").GetInt64(), s.GetProperty("peak_file_bytes").GetInt64())), path);
    }
}
