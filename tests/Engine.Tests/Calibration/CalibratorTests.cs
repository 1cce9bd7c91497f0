using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Tests.Execution.Reference;
using ModelOptPS.Engine.Tests.Verification;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Calibration;

public class CalibratorTests : IDisposable
{
    private static readonly CalibrationOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32, Seed = 5 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Planned(string family, string preset = "NVFP4_DEFAULT")
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        return model;
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilyCalibratesDeterministicallyAndExportsAVerifiedCheckpoint(string family)
    {
        using var model = Planned(family);
        var (statistics, report) = Calibrator.Run(model, Small);
        var (again, _) = Calibrator.Run(model, Small);
        Assert.Equal(statistics.InputAmax.OrderBy(kv => kv.Key), again.InputAmax.OrderBy(kv => kv.Key));
        Assert.Equal(4 * 32, report.Tokens);
        Assert.All(statistics.InputAmax.Values, a => Assert.True(float.IsFinite(a) && a > 0));
        // Every W4A4 module outside the experts got its own measurement; experts may be idle and share their layer's.
        foreach (var q in model.Plan!.CalibratedQuantizers.Where(q => !q.Contains(".experts.", StringComparison.Ordinal)))
            Assert.True(statistics.InputAmax.ContainsKey(q), $"{q} was not calibrated");
        model.Statistics = statistics;
        var export = CheckpointExporter.Export(model, _tmp.Combine("out-" + family), new ExportOptions());
        var verdict = QuantFormatVerifier.Verify(export.Path, model.Path);
        Assert.True(verdict.Passed, verdict.Summary);
    }

    public static TheoryData<string> Families() => new(TinyCheckpoints.Families);

    [Fact]
    public void FirstLayerInputAmaxEqualsAHandComputedRmsNormOfTheEmbeddings()
    {
        using var model = Planned("llama");
        using var tokenizer = TextTokenizer.Load(model.Path);
        var sequences = CalibrationSequences.Build(CalibrationDocuments.BuiltIn(CorpusSplit.Train), tokenizer, Small.Sequences);
        var (statistics, _) = Calibrator.Run(model, Small);

        // Independent of the forward code: embedding rows (bf16), standard RMSNorm in fp32 with eps 1e-5, weight 1.
        var embed = model.Checkpoint.GetTensor("model.embed_tokens.weight");
        var rows = new float[64 * 288];
        WidenBf16(embed, rows);
        double expected = 0;
        foreach (long token in sequences.SelectMany(s => s))
        {
            var row = rows.AsSpan((int)token * 64, 64);
            double meanSquare = 0;
            foreach (float v in row) meanSquare += (double)v * v;
            float inv = 1f / MathF.Sqrt((float)(meanSquare / 64) + 1e-5f);
            foreach (float v in row) expected = Math.Max(expected, Math.Abs(v * inv));
        }
        float measured = statistics.InputAmax["model.layers.0.self_attn.q_proj.input_quantizer"];
        Assert.Equal(expected, measured, 1e-4 * expected);
        Assert.Equal(measured, statistics.InputAmax["model.layers.0.self_attn.k_proj.input_quantizer"]);
    }

    [Theory]
    [InlineData("qwen3_5_moe")]
    [InlineData("llama")]
    public void KvCacheAmaxEqualsTheKeysAndValuesOfTheNaiveModel(string family)
    {
        using var model = Planned(family);
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT").WithKvCache(KvCacheMode.Fp8Scaled));
        var kvCache = model.Plan.KvCache.CalibratedQuantizers.Select(q => q.Name).ToList();
        Assert.Equal(2 * KvCachePlan.AttentionBlocks(model.Modules).Count(), kvCache.Count);
        Assert.Subset(model.Plan.CalibratedQuantizers.ToHashSet(), kvCache.ToHashSet());
        var (statistics, report) = Calibrator.Run(model, Small);
        Assert.DoesNotContain(report.Warnings, w => w.Contains("_bmm_quantizer", StringComparison.Ordinal));

        // Independent of the forward code: the plain-loop double model's keys after k_norm and RoPE, and its values,
        // as its attention function receives them, over the same calibration sequences.
        using var tokenizer = TextTokenizer.Load(model.Path);
        var sequences = CalibrationSequences.Build(CalibrationDocuments.BuiltIn(CorpusSplit.Train), tokenizer, Small.Sequences);
        var expected = new Dictionary<string, double>(StringComparer.Ordinal);
        void Max(string quantizer, double[][] values) =>
            expected[quantizer] = Math.Max(expected.GetValueOrDefault(quantizer), values.Max(row => row.Max(Math.Abs)));
        var naive = new NaiveModel(model.Checkpoint)
        {
            OnCache = (attention, keys, values) =>
            {
                Max(attention + ".k_bmm_quantizer", keys);
                Max(attention + ".v_bmm_quantizer", values);
            },
        };
        foreach (var sequence in sequences) naive.Logits(sequence);
        Assert.True(naive.SmallestRoutingMargin > 1e-5, $"top-k margin {naive.SmallestRoutingMargin:E2} is too close to call");

        Assert.Equal(kvCache.Order(StringComparer.Ordinal), expected.Keys.Order(StringComparer.Ordinal));
        foreach (var quantizer in kvCache)
            Assert.Equal(expected[quantizer], statistics.InputAmax[quantizer], 1e-5 * expected[quantizer]);
        // Keys and values differ (keys are normed and rotated), so neither was observed in the other's place.
        var first = kvCache[0][..kvCache[0].LastIndexOf('.')];
        Assert.NotEqual(statistics.InputAmax[first + ".k_bmm_quantizer"], statistics.InputAmax[first + ".v_bmm_quantizer"]);
    }

    [Fact]
    public void AKvCacheThatSawOnlyZerosIsWarnedAboutAsSuch()
    {
        string folder = TinyCheckpoints.Write("llama", _tmp.Combine("llama-zero-v"));
        new CheckpointEditor(folder).Tensor("model.layers.1.self_attn.v_proj.weight", t => t with { Data = new byte[t.Data.Length] });
        using var model = ModelImporter.Import(folder);
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4").WithKvCache(KvCacheMode.Fp8Scaled));
        var (statistics, report) = Calibrator.Run(model, Small);

        Assert.Equal(0f, statistics.InputAmax["model.layers.1.self_attn.v_bmm_quantizer"]);
        var warning = Assert.Single(report.Warnings, w => w.Contains("_bmm_quantizer", StringComparison.Ordinal));
        Assert.StartsWith("1 KV-cache quantizer(s) measured only zeros", warning);
        Assert.Contains("model.layers.1.self_attn.v_bmm_quantizer", warning);
        Assert.DoesNotContain(report.Warnings, w => w.Contains("module input(s)", StringComparison.Ordinal));
    }

    private static void WidenBf16(Engine.Checkpoint.TensorRef tensor, float[] destination)
    {
        ReadOnlySpan<byte> bytes = tensor.File.ToArray(tensor.Info);
        for (int i = 0; i < destination.Length; i++)
            destination[i] = BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes.Slice(2 * i, 2)) << 16);
    }

    [Fact]
    public void ExpertCountsCoverEveryRoutedTokenAndAllExpertsCalibratesIdleOnes()
    {
        using var model = Planned("qwen3_moe");
        var (routed, report) = Calibrator.Run(model, Small);
        Assert.Equal(2, report.ExpertCoverage.Count);
        Assert.All(report.ExpertCoverage, c => Assert.Equal(4 * 32 * 2, c.TokensPerExpert.Sum())); // top-2
        Assert.All(report.ExpertCoverage, c => Assert.Equal(8, c.TokensPerExpert.Length));
        var (all, allReport) = Calibrator.Run(model, Small with { AllExperts = true });
        // Routing (and so the model's computation) is unchanged; every expert's inputs are now measured.
        Assert.Equal(report.ExpertCoverage.Select(c => c.TokensPerExpert), allReport.ExpertCoverage.Select(c => c.TokensPerExpert));
        for (int e = 0; e < 8; e++)
            Assert.True(all.InputAmax.ContainsKey($"model.layers.1.mlp.experts.{e}.down_proj.input_quantizer"));
        foreach (var (name, amax) in routed.InputAmax.Where(kv => !kv.Key.Contains(".experts.", StringComparison.Ordinal)))
            Assert.Equal(amax, all.InputAmax[name]);
    }

    [Fact]
    public void FusedExpertsReportUnderTheSharedQuantizerNames()
    {
        using var model = Planned("qwen3_5_moe");
        var (statistics, report) = Calibrator.Run(model, Small);
        Assert.Contains("model.language_model.layers.0.mlp.experts.gate_up_proj_input_quantizer", statistics.InputAmax.Keys);
        Assert.Contains("model.language_model.layers.3.mlp.experts.down_proj_input_quantizer", statistics.InputAmax.Keys);
        Assert.Equal(["model.language_model.layers.0.mlp.experts", "model.language_model.layers.1.mlp.experts",
            "model.language_model.layers.2.mlp.experts", "model.language_model.layers.3.mlp.experts"], report.ExpertCoverage.Select(c => c.Experts));
        Assert.Equal([0, 1, 2, 3], report.ExpertCoverage.Select(c => c.Layer!.Value));
        Assert.DoesNotContain(statistics.InputAmax.Keys, k => k.StartsWith("mtp.", StringComparison.Ordinal) || k.Contains("visual", StringComparison.Ordinal));
    }

    [Fact]
    public void UserDataAndItsErrors()
    {
        using var model = Planned("qwen3");
        var data = _tmp.Combine("chat.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(i =>
            $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"Question {i} about NVFP4?\"}}, {{\"role\": \"assistant\", \"content\": \"Answer {i}: four bits.\"}}]}}"));
        var (statistics, report) = Calibrator.Run(model, Small with { DatasetPath = data });
        Assert.Contains("chat.jsonl", report.Data);
        Assert.True(statistics.InputAmax.Count > 0);
        var tiny = _tmp.Combine("tiny.txt");
        File.WriteAllText(tiny, "too short");
        Assert.Equal("NotEnoughCalibrationData", Assert.Throws<ModelOptException>(() => Calibrator.Run(model, Small with { DatasetPath = tiny })).ErrorId);
        File.Delete(Path.Combine(model.Path, "tokenizer.json"));
        Assert.Equal("TokenizerNotFound", Assert.Throws<ModelOptException>(() => Calibrator.Run(model, Small)).ErrorId);
    }

    [Fact]
    public void CancellationLeavesNothingAttached()
    {
        using var model = Planned("llama");
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Calibrator.Run(model, Small, null, cancel.Token));
        Assert.Null(model.Statistics);
    }
}
