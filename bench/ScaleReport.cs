namespace ModelOptPS.Bench;

/// <summary>
/// The scale benchmark's results: the stages' table, the ratios (export over copy, calibration FLOP/s over the matmul
/// peak) and each stage's time extrapolated to the real 40 layers.
/// <para>Extrapolation. Calibration runs layer by layer, and the runner reports when each layer is done, so its time
/// splits into per-layer times t_i and a fixed rest F = T − Σ t_i (sequences, embedding, statistics): T₄₀ = F + 30·t̄_DeltaNet
/// + 10·t̄_attention, t̄ the mean measured time of a layer of that type. Every other stage streams the checkpoint, so its
/// time scales with the bytes it reads: T₄₀ = T · B₄₀ / B (import: with the tensor count, as it reads headers only).</para>
/// </summary>
internal sealed class ScaleReport
{
    private readonly List<string[]> _rows = [];
    private readonly List<string> _lines = [];

    private ScaleReport(object json) => Json = json;

    public object Json { get; private set; }

    public static ScaleReport Build(ScaleModel model, IReadOnlyList<ScaleStage> stages, int samples, int sequenceLength, double? generateSeconds)
    {
        var real = ScaleModel.WithLayers(ScaleModel.RealLayers);
        ScaleStage Stage(string name) => stages.Single(s => s.Stage == name);
        var peak = Stage(ScaleStages.MatmulPeakStage);
        var calibration = Stage("W4A4 calibration");

        // Calibration: per-layer times by type, fixed rest, FLOPs.
        double[] layerSeconds = calibration.Details["layer_seconds"].EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double Mean(bool full) => layerSeconds.Where((_, i) => model.IsFullAttention(i) == full).Average();
        double meanDeltaNet = Mean(false), meanAttention = Mean(true);
        int realAttention = Enumerable.Range(0, real.Layers).Count(real.IsFullAttention), realDeltaNet = real.Layers - realAttention;
        double CalibrationAt40(double total) => total - layerSeconds.Sum() + realDeltaNet * meanDeltaNet + realAttention * meanAttention;
        double tokens = calibration.Number("tokens");
        double calibratorSeconds = calibration.Number("calibrator_seconds");
        double flops = tokens * Enumerable.Range(0, model.Layers).Sum(model.FlopsPerToken);
        double flops40 = tokens * Enumerable.Range(0, real.Layers).Sum(real.FlopsPerToken);
        double achieved = flops / calibratorSeconds;
        double peakFp32 = peak.Number("fp32_gflops") * 1e9, peakBf16 = peak.Number("bf16_gflops") * 1e9;

        double bytesScale = (double)real.Bytes / model.Bytes, tensorScale = (double)real.TensorCount / model.TensorCount;
        double? At40(ScaleStage s) => s.Stage switch
        {
            ScaleStages.MatmulPeakStage => null,
            "import" => s.WallSeconds * tensorScale,
            "W4A4 calibration" => CalibrationAt40(s.WallSeconds),
            _ => s.WallSeconds * bytesScale,
        };

        double Ratio(string export, string copy) => Stage(export).WallSeconds / Stage(copy).WallSeconds;
        double coldRatio = Ratio("W4A16 export, cold", "copy, cold"), warmRatio = Ratio("W4A16 export, warm", "copy, warm");
        string[] load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[..3] : [];

        var report = new ScaleReport(new object());
        foreach (var s in stages)
        {
            double? at40 = At40(s);
            report._rows.Add([s.Stage, $"{s.WallSeconds:F1}", $"{s.CpuSeconds:F1}", Mb(s.AnonBeforeBytes), Mb(s.PeakAnonBytes), Mb(s.FileBeforeBytes),
                Mb(s.PeakFileBytes), at40 is { } t ? $"{t:F0}" : "-"]);
        }
        report._lines.Add($"checkpoint: {model.Layers} of {real.Layers} layers, {model.Bytes / 1e9:F2} GB ({real.Bytes / 1e9:F1} GB at 40 layers)" +
                          (generateSeconds is { } g ? $", generated in {g:F0} s ({model.Bytes / 1e9 / g:F2} GB/s)" : ", cached"));
        report._lines.Add($"W4A16 export / copy: {coldRatio:F2}x cold, {warmRatio:F2}x warm (wall time; < 1 is faster than copying)");
        report._lines.Add($"W4A4 calibration: {tokens:F0} tokens ({samples} x {sequenceLength}) in {calibratorSeconds:F1} s = {tokens / calibratorSeconds:F0} tokens/s; " +
                          $"{flops / 1e12:F2} TFLOP useful matmul = {achieved / 1e9:F1} GFLOP/s = {achieved / peakFp32:P0} of the fp32 matmul peak " +
                          $"({peakFp32 / 1e9:F1} GFLOP/s), {achieved / peakBf16:P0} of the bf16 peak ({peakBf16 / 1e9:F1} GFLOP/s)");
        report._lines.Add($"calibration layers: DeltaNet {meanDeltaNet:F1} s, attention {meanAttention:F1} s each; 40 layers: " +
                          $"{CalibrationAt40(calibratorSeconds):F0} s ({flops40 / 1e12:F1} TFLOP)");
        report._lines.Add($"load average {string.Join(' ', load)} on {Environment.ProcessorCount} cores");

        report.Json = new
        {
            date = DateTime.UtcNow.ToString("o"),
            processors = Environment.ProcessorCount,
            load_average_at_end = load,
            checkpoint = new
            {
                layout = "qwen3_5_moe (Qwen3.6-35B-A3B shapes), fused experts, MTP layer and vision tower, seeded weight-like bf16",
                layers = model.Layers, full_attention_layers = Enumerable.Range(0, model.Layers).Where(model.IsFullAttention).ToArray(),
                bytes = model.Bytes, tensors = model.TensorCount, bytes_at_40_layers = real.Bytes, tensors_at_40_layers = real.TensorCount,
                generate_seconds = generateSeconds,
            },
            ratios = new { w4a16_export_over_copy_cold = coldRatio, w4a16_export_over_copy_warm = warmRatio },
            calibration = new
            {
                samples, sequence_length = sequenceLength, tokens, calibrator_seconds = calibratorSeconds, tokens_per_second = tokens / calibratorSeconds,
                useful_matmul_flops = flops, useful_gflops_per_second = achieved / 1e9,
                fraction_of_fp32_peak = achieved / peakFp32, fraction_of_bf16_peak = achieved / peakBf16,
                flops_per_token_deltanet_layer = model.FlopsPerToken(0), flops_per_token_attention_layer = model.FlopsPerToken(model.Layers - 1),
                mean_layer_seconds_deltanet = meanDeltaNet, mean_layer_seconds_attention = meanAttention,
                calibrator_seconds_at_40_layers = CalibrationAt40(calibratorSeconds), useful_matmul_flops_at_40_layers = flops40,
            },
            extrapolation = new
            {
                calibration = "T40 = T - sum(t_layer) + 30 * mean(t_DeltaNet layer) + 10 * mean(t_attention layer)",
                import = $"T40 = T * tensors40 / tensors = T * {tensorScale:F3}",
                other_stages = $"T40 = T * bytes40 / bytes = T * {bytesScale:F3}",
            },
            stages = stages.Select(s => new
            {
                stage = s.Stage, wall_seconds = s.WallSeconds, cpu_seconds = s.CpuSeconds, anon_before_bytes = s.AnonBeforeBytes,
                peak_anon_bytes = s.PeakAnonBytes, file_before_bytes = s.FileBeforeBytes, peak_file_bytes = s.PeakFileBytes,
                wall_seconds_at_40_layers = At40(s), details = s.Details,
            }).ToArray(),
        };
        return report;
    }

    public void Print()
    {
        BenchContext.PrintTable(["stage", "wall s", "CPU s", "anon before", "peak anon", "file before", "peak file", "s at 40 layers"], _rows);
        foreach (string line in _lines) Console.WriteLine(line);
    }

    private static string Mb(long bytes) => $"{bytes / 1e6:F0} MB";
}
