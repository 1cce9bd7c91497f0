using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>
/// One calibration run keeps what every activation calibrator needs (max stays what it was; headroom is computed from
/// the same run) and, when asked, Hessian blocks equal to an independent XᵀX/N of the inputs each weight unit saw.
/// </summary>
public sealed class CalibrationStatisticsTests : IDisposable
{
    // 2 chunks of 2 sequences: Hessians and histograms accumulate over batches.
    private static readonly CalibrationOptions Small = new()
    {
        Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32, Seed = 5 }, TokensPerChunk = 64,
    };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Planned(string family, QuantRecipe recipe)
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));
        model.Plan = QuantPlanner.Plan(model, recipe);
        return model;
    }

    [Fact]
    public void HeadroomIsComputedFromTheSameRunForNvfp4InputsOnlyAndMaxIsUnchanged()
    {
        // FP8 attention (max), NVFP4 W4A4 MLPs (headroom), scaled FP8 KV cache (max).
        using var model = Planned("qwen3_moe", Presets.Get("NVFP4_MLP_ONLY").WithKvCache(KvCacheMode.Fp8Scaled));
        var (statistics, report) = Calibrator.Run(model, Small);
        Assert.Equal(ActivationCalibrator.Max, statistics.ActivationCalibrator);
        Assert.Equal(ActivationCalibrator.Max, report.ActivationCalibrator);
        Assert.Same(statistics.MaxAmax, statistics.InputAmax);
        Assert.Empty(statistics.HessianBlocks);

        // Max is what a plain MaxCalibrator per quantizer measures over the same inputs.
        var maxima = new MaxObserver();
        using (var runner = ModelRunner.Create(model, new RunnerOptions { TokensPerChunk = Small.TokensPerChunk }))
            runner.RunLayerwise(Sequences(model), maxima);
        Assert.Equal(maxima.Amax.OrderBy(kv => kv.Key), statistics.InputAmax.OrderBy(kv => kv.Key));

        var nvfp4 = model.Plan!.Nvfp4CalibratedInputs;
        Assert.NotEmpty(nvfp4);
        Assert.Equal(nvfp4.Where(statistics.MaxAmax.ContainsKey).Order(StringComparer.Ordinal), statistics.ActivationHistograms.Keys.Order(StringComparer.Ordinal));
        var headroom = statistics.WithActivationCalibrator(ActivationCalibrator.Headroom);
        Assert.Equal(ActivationCalibrator.Headroom, headroom.ActivationCalibrator);
        Assert.Same(statistics.MaxAmax, headroom.MaxAmax);
        Assert.Equal(statistics.InputAmax.Keys.Order(StringComparer.Ordinal), headroom.InputAmax.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, amax) in headroom.InputAmax)
        {
            if (statistics.ActivationHistograms.TryGetValue(name, out var histogram))
                Assert.Equal(HeadroomCalibrator.Amax(histogram, HeadroomSettings.Default), amax);
            else
                Assert.Equal(statistics.InputAmax[name], amax); // FP8 inputs and the KV cache stay max
        }
        Assert.Contains(headroom.InputAmax, kv => kv.Key.EndsWith("k_bmm_quantizer", StringComparison.Ordinal) && kv.Value == statistics.InputAmax[kv.Key]);
        Assert.Contains(headroom.InputAmax, kv => kv.Key.Contains("self_attn.q_proj", StringComparison.Ordinal) && kv.Value == statistics.InputAmax[kv.Key]);
        // Headroom raises NVFP4 input amaxes above the observed max on these activations (rho × 1st percentile).
        Assert.Contains(nvfp4, q => headroom.InputAmax.TryGetValue(q, out float h) && h > statistics.InputAmax[q]);

        // Switching back, and calibrating with headroom directly, give the same numbers as switching.
        Assert.Equal(statistics.InputAmax, headroom.WithActivationCalibrator(ActivationCalibrator.Max).InputAmax);
        var (direct, directReport) = Calibrator.Run(model, Small with { ActivationCalibrator = ActivationCalibrator.Headroom });
        Assert.Equal(headroom.InputAmax.OrderBy(kv => kv.Key), direct.InputAmax.OrderBy(kv => kv.Key));
        Assert.Equal(ActivationCalibrator.Headroom, directReport.ActivationCalibrator);
        Assert.Contains("Headroom activations", directReport.ToString());
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mixtral")]
    [InlineData("qwen3_5_moe")]
    public void HessianBlocksEqualAnIndependentXtXOverNOfEachUnitsInputs(string family)
    {
        using var model = Planned(family, Presets.Get("NVFP4_DEFAULT"));
        var (statistics, report) = Calibrator.Run(model, Small with { CollectHessians = true });
        var (again, _) = Calibrator.Run(model, Small with { CollectHessians = true });

        // Independent: capture every Linear input by its quantizer name only; attribute fused-expert calls to experts
        // from the routing (experts run in index order, each that got tokens once per batch), then XᵀX/N by libtorch
        // on the whole [N, C] matrix in float64.
        var capture = new CapturingObserver();
        using (var runner = ModelRunner.Create(model, new RunnerOptions { TokensPerChunk = Small.TokensPerChunk }))
            runner.RunLayerwise(Sequences(model), capture);
        Assert.Equal(capture.Units.Keys.Order(StringComparer.Ordinal), statistics.HessianBlocks.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(statistics.HessianBlocks.Count, report.HessianUnits);
        foreach (var (unit, rows) in capture.Units)
        {
            var blocks = statistics.HessianBlocks[unit];
            int columns = rows[0].Length;
            Assert.Equal(columns, blocks.Columns);
            Assert.Equal(rows.Count, blocks.Tokens);
            using var scope = NewDisposeScope();
            var x = tensor(rows.SelectMany(r => r).ToArray(), [rows.Count, columns], ScalarType.Float64);
            using var n = Engine.Torch.Scalars.Temporary(rows.Count);
            double[] full = x.t().mm(x).div(n).contiguous().data<double>().ToArray();
            double scale = full.Max(Math.Abs);
            for (int b = 0; b < columns / 16; b++)
                for (int i = 0; i < 16; i++)
                    for (int j = 0; j < 16; j++)
                        Assert.True(Math.Abs(full[(16 * b + i) * columns + 16 * b + j] - blocks.Blocks[(b * 16 + i) * 16 + j]) <= 2e-6 * scale,
                            $"{unit} block {b} [{i},{j}]: {blocks.Blocks[(b * 16 + i) * 16 + j]} vs {full[(16 * b + i) * columns + 16 * b + j]}");
            Assert.Equal(blocks.Blocks, again.HessianBlocks[unit].Blocks); // deterministic
        }

        // Tokens per expert unit are the routed counts; experts that saw no token have no Hessian.
        foreach (var (container, counts) in statistics.TokensPerExpert)
        {
            string[] projections = family == "mixtral" ? ["w1", "w3", "w2"] : ["gate_up_proj", "down_proj"];
            for (int e = 0; e < counts.Length; e++)
                foreach (var projection in projections)
                {
                    string unit = $"{container}.{e}.{projection}";
                    if (counts[e] == 0) Assert.False(statistics.HessianBlocks.ContainsKey(unit), unit);
                    else Assert.Equal(counts[e], statistics.HessianBlocks[unit].Tokens);
                }
        }
        Assert.Equal(family != "llama", statistics.TokensPerExpert.Count > 0);
        if (family == "llama") Assert.Equal(4 * 32, statistics.HessianBlocks["model.layers.0.self_attn.q_proj"].Tokens);
    }

    private static IReadOnlyList<long[]> Sequences(HFModel model) =>
        TokenSequences.Build(model.Path, null, null, Small.Sequences, CorpusSplit.Train).Sequences;

    /// <summary>A MaxCalibrator per observed name (the max calibration before activation histograms existed).</summary>
    private sealed class MaxObserver : IActivationObserver
    {
        private readonly Dictionary<string, MaxCalibrator> _calibrators = [];

        public IEnumerable<KeyValuePair<string, float>> Amax => _calibrators.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.Amax!.Value));

        public void ObserveInput(string inputQuantizerName, Tensor input)
        {
            if (!_calibrators.TryGetValue(inputQuantizerName, out var calibrator)) _calibrators[inputQuantizerName] = calibrator = new MaxCalibrator(inputQuantizerName);
            calibrator.Collect(input);
        }

        public void ObserveRouting(string expertsContainer, Tensor expertIndices)
        {
        }
    }

    /// <summary>Rows of every Linear input per weight unit, from quantizer names and routing alone.</summary>
    private sealed class CapturingObserver : IActivationObserver
    {
        private const string Fused = "_input_quantizer", Single = ".input_quantizer";
        private readonly Dictionary<string, Queue<int>> _pending = [];
        private readonly Dictionary<string, int> _current = [];

        public Dictionary<string, List<double[]>> Units { get; } = [];

        public void ObserveInput(string inputQuantizerName, Tensor input)
        {
            if (StatisticsCollector.IsKvCache(inputQuantizerName) || input.shape[^1] % 16 != 0) return;
            string unit;
            if (inputQuantizerName.EndsWith(Single, StringComparison.Ordinal)) unit = inputQuantizerName[..^Single.Length];
            else
            {
                string module = inputQuantizerName[..^Fused.Length];
                int dot = module.LastIndexOf('.');
                string container = module[..dot], projection = module[(dot + 1)..];
                // gate_up_proj opens the next routed expert of this batch; down_proj follows it.
                if (projection == "gate_up_proj") _current[container] = _pending[container].Dequeue();
                unit = $"{container}.{_current[container]}.{projection}";
            }
            if (!Units.TryGetValue(unit, out var rows)) Units[unit] = rows = [];
            var values = input.to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
            int columns = (int)input.shape[^1];
            for (int r = 0; r < values.Length / columns; r++) rows.Add(values[(r * columns)..((r + 1) * columns)]);
        }

        public void ObserveRouting(string expertsContainer, Tensor expertIndices)
        {
            var experts = expertIndices.cpu().data<long>().ToArray().Select(e => (int)e).Distinct().Order();
            _pending[expertsContainer] = new Queue<int>(experts);
        }
    }
}
