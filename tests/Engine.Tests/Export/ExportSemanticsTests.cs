using System.Text.Json.Nodes;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>The contract's shared-scale, MoE-layout, config and safety rules, checked from first principles.</summary>
public class ExportSemanticsTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static float Scalar(CheckpointReader r, string name) => BitConverter.ToSingle(r.GetTensor(name).File.ToArray(r.GetTensor(name).Info));

    private static float SourceAmax(HFModel model, string tensor, long offset = 0, int length = -1)
    {
        var t = model.Checkpoint.GetTensor(tensor);
        var bytes = length < 0 ? t.File.ToArray(t.Info) : t.File.ToArray(t.Info, offset, length);
        return Amax.Compute(bytes, t.Info.DType).Amax;
    }

    [Fact]
    public void FusedShardsAndExpertsShareScales()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe");
        var stats = model.Statistics!.InputAmax;
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        const string a = "model.layers.1.self_attn.";
        float qkvAmax = new[] { "q_proj", "k_proj", "v_proj" }.Max(p => SourceAmax(model, a + p + ".weight"));
        float qkvInput = new[] { "q_proj", "k_proj", "v_proj" }.Max(p => stats[a + p + ".input_quantizer"]);
        foreach (var p in new[] { "q_proj", "k_proj", "v_proj" })
        {
            Assert.Equal(GlobalScale.ForWeight(qkvAmax), Scalar(output, a + p + ".weight_scale_2"));
            Assert.Equal(GlobalScale.FromAmax(qkvInput), Scalar(output, a + p + ".input_scale"));
        }
        Assert.Equal(GlobalScale.ForWeight(SourceAmax(model, a + "o_proj.weight")), Scalar(output, a + "o_proj.weight_scale_2"));
        Assert.Equal(GlobalScale.FromAmax(stats[a + "o_proj.input_quantizer"]), Scalar(output, a + "o_proj.input_scale"));

        const string x = "model.layers.0.mlp.experts.";
        float gateUpInput = Enumerable.Range(0, 8).SelectMany(e => new[] { "gate_proj", "up_proj" }).Distinct().Count() > 0
            ? Enumerable.Range(0, 8).SelectMany(e => new[] { $"{x}{e}.gate_proj.input_quantizer", $"{x}{e}.up_proj.input_quantizer" }).Max(q => stats[q])
            : 0;
        float downInput = Enumerable.Range(0, 8).Max(e => stats[$"{x}{e}.down_proj.input_quantizer"]);
        for (int e = 0; e < 8; e++)
        {
            float pair = Math.Max(SourceAmax(model, $"{x}{e}.gate_proj.weight"), SourceAmax(model, $"{x}{e}.up_proj.weight"));
            Assert.Equal(GlobalScale.ForWeight(pair), Scalar(output, $"{x}{e}.gate_proj.weight_scale_2"));
            Assert.Equal(GlobalScale.ForWeight(pair), Scalar(output, $"{x}{e}.up_proj.weight_scale_2"));
            Assert.Equal(GlobalScale.ForWeight(SourceAmax(model, $"{x}{e}.down_proj.weight")), Scalar(output, $"{x}{e}.down_proj.weight_scale_2"));
            Assert.Equal(GlobalScale.FromAmax(gateUpInput), Scalar(output, $"{x}{e}.gate_proj.input_scale"));
            Assert.Equal(GlobalScale.FromAmax(gateUpInput), Scalar(output, $"{x}{e}.up_proj.input_scale"));
            Assert.Equal(GlobalScale.FromAmax(downInput), Scalar(output, $"{x}{e}.down_proj.input_scale"));
        }
    }

    [Fact]
    public void FusedExpertsAreSplitGateFirstWithPerExpertScales()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe");
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        const string x = "model.language_model.layers.2.mlp.experts";
        var gateUp = model.Checkpoint.GetTensor(x + ".gate_up_proj");
        int I = 32, H = 64, expertBytes = 2 * I * H * 2;
        float inputAmax = model.Statistics!.InputAmax[x + ".gate_up_proj_input_quantizer"];
        for (int e = 0; e < 8; e++)
        {
            float amax = SourceAmax(model, x + ".gate_up_proj", (long)e * expertBytes, expertBytes);
            float ws2 = GlobalScale.ForWeight(amax);
            foreach (var (proj, offset) in new[] { ("gate_proj", 0), ("up_proj", I * H * 2) })
            {
                string p = $"{x}.{e}.{proj}";
                var packed = new byte[I * H / 2];
                var scales = new byte[I * H / 16];
                Nvfp4.Quantize(p, gateUp.File.ToArray(gateUp.Info, (long)e * expertBytes + offset, I * H * 2), DType.BF16, I, H, packed, scales,
                    new Nvfp4Options { GlobalAmax = amax });
                Assert.Equal(packed, output.GetTensor(p + ".weight").File.ToArray(output.GetTensor(p + ".weight").Info));
                Assert.Equal(ws2, Scalar(output, p + ".weight_scale_2"));
                Assert.Equal(GlobalScale.FromAmax(inputAmax), Scalar(output, p + ".input_scale"));
            }
            Assert.Equal([64L, 16], output.GetTensor($"{x}.{e}.down_proj.weight").Info.Shape);
        }
        Assert.DoesNotContain(output.Tensors.Keys, k => k.StartsWith(x + ".gate_up_proj", StringComparison.Ordinal));
        // MTP experts are copied fused and unchanged.
        Assert.Equal([8L, 64, 64], output.GetTensor("mtp.layers.0.mlp.experts.gate_up_proj").Info.Shape);
    }

    [Fact]
    public void UnquantizedFusedExpertsAreStillSplitInTheSourceDType()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe", exclude: ["model.language_model.layers.1.mlp.experts"]);
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        const string x = "model.language_model.layers.1.mlp.experts";
        var gateUp = model.Checkpoint.GetTensor(x + ".gate_up_proj");
        var up3 = output.GetTensor($"{x}.3.up_proj.weight");
        Assert.Equal(DType.BF16, up3.Info.DType);
        Assert.Equal([32L, 64], up3.Info.Shape);
        Assert.Equal(gateUp.File.ToArray(gateUp.Info, 3L * 64 * 64 * 2 + 32 * 64 * 2, 32 * 64 * 2), up3.File.ToArray(up3.Info));
        Assert.False(output.Tensors.ContainsKey($"{x}.3.up_proj.weight_scale"));
    }

    [Fact]
    public void Qwen35MoeConfigAndExclusionList()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe");
        var result = ExportFixture.Export(model, _tmp);
        const string t = "model.language_model.layers.";
        var expected = new List<string> { "lm_head", "model.visual*" };
        for (int l = 0; l < 4; l++)
        {
            expected.Add($"{t}{l}.mlp.gate");
            expected.Add($"{t}{l}.mlp.shared_expert_gate");
            if (l == 3) continue;
            expected.AddRange([$"{t}{l}.linear_attn.conv1d", $"{t}{l}.linear_attn.in_proj_a", $"{t}{l}.linear_attn.in_proj_b"]);
        }
        expected.Sort(StringComparer.Ordinal);
        // The MTP head is not in the sorted summary: ModelOpt's model has no mtp.* modules, and _add_mtp_exclusions appends
        // the prefixes of the MTP tensors afterwards, sorted (upstream ModelOpt, as in nvidia/Qwen3.6-27B-NVFP4).
        expected.AddRange(["mtp*", "mtp.layers.0*"]);
        Assert.Equal(expected, result.ExcludedModules);

        var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "hf_quant_config.json")))!;
        Assert.Equal("modelopt", hf["producer"]!["name"]!.GetValue<string>());
        var q = hf["quantization"]!.AsObject();
        Assert.Equal("NVFP4", q["quant_algo"]!.GetValue<string>());
        Assert.True(q.ContainsKey("kv_cache_quant_algo"));
        Assert.Null(q["kv_cache_quant_algo"]);
        Assert.Equal(16, q["group_size"]!.GetValue<int>());
        Assert.Equal(expected, q["exclude_modules"]!.AsArray().Select(n => n!.GetValue<string>()));

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!;
        Assert.Equal("Qwen3_5MoeForConditionalGeneration", config["architectures"]![0]!.GetValue<string>());
        Assert.Contains(result.Warnings, w => w.Contains("no architectures", StringComparison.Ordinal));
        var qc = config["quantization_config"]!;
        Assert.Equal("modelopt", qc["quant_method"]!.GetValue<string>());
        Assert.Equal(expected, qc["ignore"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(4, qc["config_groups"]!["group_0"]!["input_activations"]!["num_bits"]!.GetValue<int>());
        // The rest of the source config is unchanged.
        Assert.Equal(model.Config.Root["text_config"]!.ToJsonString(), config["text_config"]!.ToJsonString());
    }

    [Fact]
    public void WeightOnlyExportNeedsNoCalibrationAndWritesNoInputScales()
    {
        using var model = ExportFixture.Planned(_tmp, "mixtral", "W4A16_NVFP4");
        Assert.Null(model.Statistics);
        var result = ExportFixture.Export(model, _tmp);
        using var output = CheckpointReader.Open(result.Path);
        Assert.DoesNotContain(output.Tensors.Keys, k => k.EndsWith(".input_scale", StringComparison.Ordinal));
        Assert.True(output.Tensors.ContainsKey("model.layers.0.block_sparse_moe.experts.2.w3.weight_scale_2"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!;
        Assert.Equal("W4A16_NVFP4", config["quantization_config"]!["quant_algo"]!.GetValue<string>());
        Assert.Null(config["quantization_config"]!["config_groups"]!["group_0"]!["input_activations"]);
    }

    [Fact]
    public void W4A4WithoutCalibrationIsRefusedWithAdvice()
    {
        using var model = ExportFixture.Planned(_tmp, "llama");
        model.Statistics = null;
        var ex = Assert.Throws<ModelOptException>(() => ExportFixture.Export(model, _tmp));
        Assert.Equal("CalibrationRequired", ex.ErrorId);
        Assert.Contains("Invoke-Calibration", ex.Message);
        Assert.Contains("W4A16_NVFP4", ex.Message);
    }

    [Fact]
    public void MissingInputAmaxIsAnErrorButAnIdleExpertTakesTheSharedValue()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe");
        var amax = model.Statistics!.InputAmax.ToDictionary();
        amax.Remove("model.layers.0.mlp.experts.5.gate_proj.input_quantizer");
        amax["model.layers.0.mlp.experts.6.up_proj.input_quantizer"] = 0f;
        model.Statistics = new CalibrationStatistics(amax);
        var result = ExportFixture.Export(model, _tmp);
        Assert.Contains(result.Warnings, w => w.Contains("experts.5.gate_proj.input_quantizer", StringComparison.Ordinal));
        amax.Remove("model.layers.1.self_attn.q_proj.input_quantizer");
        amax.Remove("model.layers.1.self_attn.k_proj.input_quantizer");
        amax.Remove("model.layers.1.self_attn.v_proj.input_quantizer");
        model.Statistics = new CalibrationStatistics(amax);
        Assert.Equal("InputAmaxMissing", Assert.Throws<ModelOptException>(() => ExportFixture.Export(model, _tmp)).ErrorId);
    }

    [Fact]
    public void OutputIsByteIdenticalAcrossRunsAndTheSourceIsUntouched()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_next", maxShardBytes: 200_000);
        string before = Snapshot(model.Path);
        var a = ExportFixture.Export(model, _tmp, maxShardBytes: 250_000);
        var b = ExportFixture.Export(model, _tmp, maxShardBytes: 250_000);
        Assert.True(a.Files.Count(f => f.EndsWith(".safetensors", StringComparison.Ordinal)) > 1);
        Assert.Contains(CheckpointWriter.IndexFileName, a.Files);
        Assert.Equal(a.Files, b.Files);
        foreach (var f in a.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, f)), File.ReadAllBytes(Path.Combine(b.Path, f)));
        Assert.Equal(before, Snapshot(model.Path));
    }

    [Fact]
    public void ExistingTargetIsRefusedUnlessForcedAndNothingHalfWrittenRemains()
    {
        using var model = ExportFixture.Planned(_tmp, "llama");
        string target = _tmp.Combine("target");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "x");
        var ex = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions()));
        Assert.Equal("TargetExists", ex.ErrorId);
        Assert.Equal(ErrorKind.ResourceExists, ex.Kind);
        Assert.True(File.Exists(Path.Combine(target, "keep.txt")));
        var forced = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions { Force = true }));
        Assert.Equal(ExportErrorIds.TargetNotAnExport, forced.ErrorId);
        Assert.Equal(["keep.txt"], Directory.GetFiles(target).Select(Path.GetFileName));

        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        string cancelled = _tmp.Combine("cancelled");
        Assert.ThrowsAny<OperationCanceledException>(() => CheckpointExporter.Export(model, cancelled, new ExportOptions(), null, cancel.Token));
        Assert.False(Directory.Exists(cancelled));
        Assert.DoesNotContain(Directory.GetDirectories(_tmp.Path), d => Path.GetFileName(d).Contains(".partial-"));

        var inside = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, Path.Combine(model.Path, "out"), new ExportOptions()));
        Assert.Equal("TargetOverlapsSource", inside.ErrorId);
    }

    [Fact]
    public void CompressedTensorsStoresReciprocalGlobalScales()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe");
        var mo = ExportFixture.Export(model, _tmp);
        var ct = ExportFixture.Export(model, _tmp, ExportFormat.CompressedTensors);
        using var a = CheckpointReader.Open(mo.Path);
        using var b = CheckpointReader.Open(ct.Path);
        const string p = "model.layers.0.mlp.experts.1.up_proj";
        Assert.Equal(1f / Scalar(a, p + ".weight_scale_2"), Scalar(b, p + ".weight_global_scale"));
        Assert.Equal(1f / Scalar(a, p + ".input_scale"), Scalar(b, p + ".input_global_scale"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ct.Path, "config.json")))!["quantization_config"]!;
        Assert.Equal("nvfp4-pack-quantized", config["format"]!.GetValue<string>());
        Assert.Equal("local", config["config_groups"]!["group_0"]!["input_activations"]!["dynamic"]!.GetValue<string>());
        Assert.Equal("tensor_group", config["config_groups"]!["group_0"]!["weights"]!["strategy"]!.GetValue<string>());
        Assert.Equal(["lm_head", "model.layers.0.mlp.gate", "model.layers.1.mlp.gate"], config["ignore"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    private static string Snapshot(string folder) => string.Join("\n", Directory.GetFiles(folder).Order()
        .Select(f => $"{f} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f).Ticks} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))}"));
}
