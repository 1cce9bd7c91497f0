using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>Valid FP8 and MIXED_PRECISION exports written once per test class by <see cref="TestExport"/>, copied for each test.</summary>
public sealed class Fp8Baselines : IDisposable
{
    private readonly TempFolder _tmp = new();
    private readonly Dictionary<string, (string Source, string Export)> _written = [];
    private readonly Lock _lock = new();

    /// <summary>Every language-model Linear but lm_head FP8 (llama).</summary>
    public const string Fp8 = "fp8";

    /// <summary>nvidia/Qwen3.6-35B-A3B-NVFP4's pattern on Qwen3.5-MoE: W4A16_NVFP4 experts, shared expert and lm_head; FP8 attention and linear-attention projections; FP8 KV cache (cast).</summary>
    public const string Mixed = "mixed";

    /// <summary><see cref="Mixed"/> with a calibrated KV cache (k_scale / v_scale on every attention block).</summary>
    public const string MixedKvScaled = "mixed-kv-scaled";

    /// <summary><see cref="Mixed"/> with a k_proj in NVFP4 while q_proj and v_proj are FP8: a merged layer of two precisions.</summary>
    public const string MixedQkv = "mixed-qkv";

    public static string? NvidiaQwen36Pattern(ModelModule module)
    {
        string last = ModuleClassifier.LastComponent(module.Name);
        if (last == "lm_head" || module.Kind == ModuleKind.FusedExperts || module.Name.Contains(".shared_expert.", StringComparison.Ordinal))
            return TestExport.W4A16;
        return last is "q_proj" or "k_proj" or "v_proj" or "o_proj" or "in_proj_qkv" or "in_proj_z" or "out_proj" ? TestExport.Fp8 : null;
    }

    public (string Source, string Export) Copy(string name, string into)
    {
        var (source, export) = Baseline(name);
        Directory.CreateDirectory(into);
        foreach (var file in Directory.EnumerateFiles(export)) File.Copy(file, Path.Combine(into, Path.GetFileName(file)));
        return (source, into);
    }

    private (string Source, string Export) Baseline(string name)
    {
        lock (_lock)
        {
            if (_written.TryGetValue(name, out var done)) return done;
            string family = name == Fp8 ? "llama" : "qwen3_5_moe";
            string source = Path.Combine(_tmp.Path, "source-" + family);
            if (!Directory.Exists(source)) TinyCheckpoints.Write(family, source, maxShardBytes: 150_000);
            string export = Path.Combine(_tmp.Path, name);
            switch (name)
            {
                case Fp8:
                    TestExport.WriteModelOpt(source, export, m => ModuleClassifier.LastComponent(m.Name) == "lm_head" ? null : TestExport.Fp8);
                    break;
                case Mixed:
                    TestExport.WriteModelOpt(source, export, NvidiaQwen36Pattern, KvCacheWrite.Fp8Cast);
                    break;
                case MixedKvScaled:
                    TestExport.WriteModelOpt(source, export, NvidiaQwen36Pattern, KvCacheWrite.Fp8Scaled);
                    break;
                default:
                    TestExport.WriteModelOpt(source, export,
                        m => ModuleClassifier.LastComponent(m.Name) == "k_proj" ? TestExport.Nvfp4 : NvidiaQwen36Pattern(m), KvCacheWrite.Fp8Cast);
                    break;
            }
            return _written[name] = (source, export);
        }
    }

    public void Dispose() => _tmp.Dispose();
}

/// <summary>
/// FP8 per-tensor modules, MIXED_PRECISION checkpoints and the FP8 KV cache, as ModelOpt writes them: valid exports
/// pass with and without -Reference, and each way of breaking one is reported under its own id.
/// </summary>
public sealed class Fp8MixedPrecisionTests(Fp8Baselines baselines, ITestOutputHelper output) : IClassFixture<Fp8Baselines>
{
    private const string Attention = "model.language_model.layers.3.self_attn";
    private const string LlamaAttention = "model.layers.0.self_attn";
    private const string Experts = "model.language_model.layers.0.mlp.experts";

    [Theory]
    [InlineData(Fp8Baselines.Fp8)]
    [InlineData(Fp8Baselines.Mixed)]
    [InlineData(Fp8Baselines.MixedKvScaled)]
    public void ValidExportPassesWithAndWithoutReference(string baseline)
    {
        using var tmp = new TempFolder();
        var (source, export) = baselines.Copy(baseline, tmp.Combine("export"));

        var plain = QuantFormatVerifier.Verify(export);
        var report = QuantFormatVerifier.Verify(export, source);

        Assert.True(plain.Passed, Failures(plain));
        Assert.True(report.Passed, Failures(report));
        Assert.Equal(baseline == Fp8Baselines.Fp8 ? "FP8" : "MIXED_PRECISION", report.QuantAlgo);
        Assert.Equal(baseline == Fp8Baselines.Fp8 ? null : "FP8", report.KvCacheQuantAlgo);
        var fp8 = report.Checks.Where(c => c.Found.StartsWith("FP8 [", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(fp8);
        Assert.All(fp8, c => Assert.InRange(c.SqnrDb!.Value, 25, 60)); // E4M3's 3 mantissa bits: about 30 dB on Gaussian weights
        Assert.Equal(report.QuantizedModules, report.Checks.Count(c => c.Found.StartsWith("FP8 [", StringComparison.Ordinal) || c.Found.StartsWith("NVFP4 [", StringComparison.Ordinal)));
    }

    /// <summary>ModelOpt does not unify FP8 scales across q/k/v (vLLM requantizes to the max): differing ones are valid.</summary>
    [Fact]
    public void Fp8MergedLayerKeepsEachShardsScales()
    {
        using var tmp = new TempFolder();
        var (_, export) = baselines.Copy(Fp8Baselines.Fp8, tmp.Combine("export"));
        var editor = new CheckpointEditor(export);

        Assert.Equal(3, new[] { "q_proj", "k_proj", "v_proj" }.Select(p => editor.ReadScalar($"{LlamaAttention}.{p}.weight_scale")).Distinct().Count());
        Assert.True(QuantFormatVerifier.Verify(export).Passed);
    }

    [Fact]
    public void MixedPrecisionEntriesMatchTheTensorsOnDisk()
    {
        using var tmp = new TempFolder();
        var (_, export) = baselines.Copy(Fp8Baselines.Mixed, tmp.Combine("export"));

        var report = QuantFormatVerifier.Verify(export);

        var entry = Assert.Single(report.Checks, c => c.Scope == CheckScope.QuantizedLayer && c.Name == Experts);
        Assert.Equal(CheckStatus.Pass, entry.Status);
        Assert.Contains($"{Experts}.0.gate_proj", entry.Reason, StringComparison.Ordinal);
        var lmHead = Assert.Single(report.Checks, c => c.Scope == CheckScope.Module && c.Name == "lm_head");
        Assert.StartsWith("NVFP4 [", lmHead.Found, StringComparison.Ordinal); // NVIDIA ships lm_head W4A16_NVFP4
        var inProjA = Assert.Single(report.Checks, c => c.Scope == CheckScope.Module && c.Name == "model.language_model.layers.0.linear_attn.in_proj_a");
        Assert.Equal(CheckStatus.Pass, inProjA.Status);
        Assert.Contains("no quantized_layers entry", inProjA.Reason, StringComparison.Ordinal);
    }

    /// <summary>A baseline, how to break it, the module (or entry / config file) that must report it, and the id.</summary>
    public static TheoryData<string> Breaks()
    {
        var data = new TheoryData<string>();
        foreach (var name in BreakCases.Keys) data.Add(name);
        return data;
    }

    private sealed record Break(string Baseline, Action<CheckpointEditor, string> Apply, string Check, string Id, bool WithReference = false);

    private static readonly Dictionary<string, Break> BreakCases = new()
    {
        ["weight_scale stored as BF16"] = new(Fp8Baselines.Fp8,
            (e, _) => e.Tensor($"{LlamaAttention}.o_proj.weight_scale", t => t with { DType = DType.BF16, Data = t.Data[2..] }),
            $"{LlamaAttention}.o_proj", VerificationIds.WrongDType),
        ["FP8 weight flattened"] = new(Fp8Baselines.Fp8,
            (e, _) => e.Tensor($"{LlamaAttention}.o_proj.weight", t => t with { Shape = [t.Shape[0] * t.Shape[1]] }),
            $"{LlamaAttention}.o_proj", VerificationIds.WrongShape),
        ["input_scale missing"] = new(Fp8Baselines.Fp8,
            (e, _) => e.Tensors(list => list.RemoveAll(t => t.Name == $"{LlamaAttention}.k_proj.input_scale")),
            $"{LlamaAttention}.k_proj", VerificationIds.MissingInputScale),
        ["weight_scale negative"] = new(Fp8Baselines.Fp8, (e, _) => e.Scalar($"{LlamaAttention}.v_proj.weight_scale", -0.01f),
            $"{LlamaAttention}.v_proj", VerificationIds.InvalidScale),
        ["input_scale zero"] = new(Fp8Baselines.Fp8, (e, _) => e.Scalar("model.layers.1.mlp.down_proj.input_scale", 0f),
            "model.layers.1.mlp.down_proj", VerificationIds.InvalidScale),
        ["weight_scale_2 on an FP8 module"] = new(Fp8Baselines.Fp8,
            (e, _) => e.Tensors(list => list.Add(new StoredTensor($"{LlamaAttention}.q_proj.weight_scale_2", DType.F32, [], new byte[] { 0, 0, 128, 63 })
                { Shard = list.First(t => t.Name == $"{LlamaAttention}.q_proj.weight").Shard })),
            $"{LlamaAttention}.q_proj", VerificationIds.UnexpectedTensor),
        ["NaN code in an FP8 weight"] = new(Fp8Baselines.Fp8, (e, _) => e.Tensor("model.layers.1.mlp.up_proj.weight", t => Patched(t, 5, 0x7F)),
            "model.layers.1.mlp.up_proj", VerificationIds.NaNFp8Weight),
        ["FP8 codes changed"] = new(Fp8Baselines.Fp8, (e, _) => e.Tensor("model.layers.1.mlp.up_proj.weight", t => Patched(t, 7, (byte)(t.Data[7] ^ 0x08))),
            "model.layers.1.mlp.up_proj", VerificationIds.QuantizationErrorOutOfBound, WithReference: true),
        ["weight_scale off by one ulp"] = new(Fp8Baselines.Fp8,
            (e, _) => e.Scalar($"{LlamaAttention}.o_proj.weight_scale", BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(e.ReadScalar($"{LlamaAttention}.o_proj.weight_scale")) + 1)),
            $"{LlamaAttention}.o_proj", VerificationIds.Fp8WeightScaleMismatch, WithReference: true),
        ["gate and up swapped"] = new(Fp8Baselines.Fp8, (e, _) => e.SwapModules("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"),
            "model.layers.0.mlp.gate_proj", VerificationIds.WeightsOfOtherModule, WithReference: true),
        ["quantized_layers entry names nothing"] = new(Fp8Baselines.Mixed,
            (e, _) => EditLayers(e, layers => layers["model.language_model.layers.9.mlp.down_proj"] = new JsonObject { ["quant_algo"] = "FP8" }, group: 0),
            "model.language_model.layers.9.mlp.down_proj", VerificationIds.QuantizedLayerMatchesNothing),
        ["NVFP4 entry with group_size 32"] = new(Fp8Baselines.Mixed,
            (e, _) => EditLayers(e, layers => layers["lm_head"]!["group_size"] = 32, group: null),
            "hf_quant_config.json", VerificationIds.QuantConfigInvalid),
        ["quantized Linear not listed"] = new(Fp8Baselines.Mixed,
            (e, _) => EditLayers(e, layers => layers.Remove($"{Attention}.o_proj"), group: null),
            $"{Attention}.o_proj", VerificationIds.QuantizedButNotListed),
        ["listed Linear left unquantized"] = new(Fp8Baselines.Mixed, (e, source) => e.RestoreSource($"{Attention}.o_proj", source),
            $"{Attention}.o_proj", VerificationIds.NotQuantized),
        ["FP8 tensors where NVFP4 is declared"] = new(Fp8Baselines.Mixed,
            (e, _) => EditLayers(e, layers => layers[$"{Attention}.o_proj"] = new JsonObject { ["quant_algo"] = "NVFP4", ["group_size"] = 16 }, group: null),
            $"{Attention}.o_proj", VerificationIds.WrongQuantFormat),
        ["config.json quantized_layers differ"] = new(Fp8Baselines.Mixed,
            (e, _) => e.Json("config.json", root => root["quantization_config"]!["quantized_layers"]!.AsObject().Remove($"{Attention}.o_proj")),
            "config.json", VerificationIds.QuantizedLayersDiffer),
        ["config group targets another algorithm's layer"] = new(Fp8Baselines.Mixed,
            (e, _) => e.Json("config.json", root => root["quantization_config"]!["config_groups"]!["group_0"]!["targets"]!.AsArray().Add("lm_head")),
            "config.json", VerificationIds.ConfigGroupsInconsistent),
        ["k_proj in another precision than q/v"] = new(Fp8Baselines.MixedQkv, (_, _) => { }, $"{Attention}.k_proj", VerificationIds.MergedLayerMixedPrecision),
        ["KV scales on some attention blocks only"] = new(Fp8Baselines.MixedKvScaled,
            (e, _) => e.Tensors(list => list.RemoveAll(t => t.Name == $"{Attention}.v_proj.v_scale")),
            $"{Attention}.v_proj", VerificationIds.KvScalesPartial),
        ["KV scales without a quantized KV cache"] = new(Fp8Baselines.MixedKvScaled, (e, _) =>
        {
            e.Json("hf_quant_config.json", root => root["quantization"]!["kv_cache_quant_algo"] = null);
            e.Json("config.json", root => root["quantization_config"]!.AsObject().Remove("kv_cache_scheme"));
        }, $"{Attention}.k_proj", VerificationIds.KvScalesWithoutKvCache),
        ["KV scale not positive"] = new(Fp8Baselines.MixedKvScaled, (e, _) => e.Scalar($"{Attention}.k_proj.k_scale", 0f),
            $"{Attention}.k_proj", VerificationIds.InvalidScale),
        ["KV scale on q_proj"] = new(Fp8Baselines.MixedKvScaled,
            (e, _) => e.Tensor($"{Attention}.k_proj.k_scale", t => t with { Name = $"{Attention}.q_proj.k_scale" }),
            $"{Attention}.q_proj", VerificationIds.KvScaleMisplaced),
        ["unknown KV cache algorithm"] = new(Fp8Baselines.Mixed,
            (e, _) => e.Json("hf_quant_config.json", root => root["quantization"]!["kv_cache_quant_algo"] = "INT8"),
            "hf_quant_config.json", VerificationIds.UnsupportedKvCacheQuantAlgo),
        ["kv_cache_scheme disagrees"] = new(Fp8Baselines.Mixed,
            (e, _) => e.Json("config.json", root => root["quantization_config"]!["kv_cache_scheme"]!["num_bits"] = 4),
            "config.json", VerificationIds.KvCacheSchemeMismatch),
    };

    [Theory]
    [MemberData(nameof(Breaks))]
    public void ReportsTheBreakUnderItsOwnId(string name)
    {
        var b = BreakCases[name];
        using var tmp = new TempFolder();
        var (source, export) = baselines.Copy(b.Baseline, tmp.Combine("export"));

        b.Apply(new CheckpointEditor(export), source);
        var report = QuantFormatVerifier.Verify(export, b.WithReference ? source : null);

        output.WriteLine(Failures(report));
        Assert.False(report.Passed);
        // A module's name may also be its quantized_layers entry's: either check may carry the finding.
        Assert.Contains(report.Checks.Where(c => c.Name == b.Check).SelectMany(c => c.Issues), i => i.Id == b.Id && i.Status == CheckStatus.Fail);
    }

    /// <summary>The KV scales of a calibrated export are F32 0-d; a cast-mode export has none and says FP8 all the same.</summary>
    [Fact]
    public void CastModeWritesNoScalesAndScaledModeOnePairPerAttentionBlock()
    {
        using var tmp = new TempFolder();
        var (_, cast) = baselines.Copy(Fp8Baselines.Mixed, tmp.Combine("cast"));
        var (_, scaled) = baselines.Copy(Fp8Baselines.MixedKvScaled, tmp.Combine("scaled"));
        using var castReader = CheckpointReader.Open(cast);
        using var scaledReader = CheckpointReader.Open(scaled);

        static bool IsKvScale(string name) => name.EndsWith(".k_scale", StringComparison.Ordinal) || name.EndsWith(".v_scale", StringComparison.Ordinal);
        Assert.DoesNotContain(castReader.Tensors.Keys, IsKvScale);
        var kv = scaledReader.Tensors.Values.Where(t => IsKvScale(t.Name)).ToList();
        int attentionBlocks = scaledReader.Tensors.Keys.Count(k => k.StartsWith("model.language_model.", StringComparison.Ordinal) && k.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal));
        Assert.NotEqual(0, attentionBlocks);
        Assert.Equal(2 * attentionBlocks, kv.Count);
        Assert.All(kv, t => Assert.Equal((DType.F32, 0), (t.Info.DType, t.Info.Rank)));
        Assert.Equal("FP8", QuantFormatVerifier.Verify(cast).KvCacheQuantAlgo);
    }

    /// <summary>
    /// nvidia/Qwen3.6-35B-A3B-NVFP4's config.json (ModelOpt 0.44) gives its W4A16_NVFP4 config group NVFP4
    /// input_activations and has no kv_cache_scheme: consumers read quantized_layers and hf_quant_config.json, so that
    /// passes, with a warning for the missing kv_cache_scheme.
    /// </summary>
    [Fact]
    public void NvidiasPublishedConfigShapePassesWithAWarning()
    {
        using var tmp = new TempFolder();
        var (_, export) = baselines.Copy(Fp8Baselines.Mixed, tmp.Combine("export"));
        new CheckpointEditor(export).Json("config.json", root =>
        {
            var config = root["quantization_config"]!.AsObject();
            config.Remove("kv_cache_scheme");
            foreach (var (_, group) in config["config_groups"]!.AsObject())
                if (group!["input_activations"] is null) group["input_activations"] = group["weights"]!.DeepClone();
        });

        var report = QuantFormatVerifier.Verify(export);

        Assert.True(report.Passed, Failures(report));
        var warning = Assert.Single(report.Checks, c => c.Status == CheckStatus.Warn);
        Assert.Equal(("config.json", VerificationIds.KvCacheSchemeMismatch), (warning.Name, warning.ErrorId));
    }

    private static StoredTensor Patched(StoredTensor t, int index, byte value)
    {
        var data = t.Data.ToArray();
        data[index] = value;
        return t with { Data = data };
    }

    /// <summary>
    /// Edits quantized_layers in both config files and keeps config_groups consistent: a new entry joins group
    /// <paramref name="group"/>; a removed or changed entry leaves or stays in its group as its new config says.
    /// </summary>
    private static void EditLayers(CheckpointEditor editor, Action<JsonObject> edit, int? group)
    {
        editor.Json("hf_quant_config.json", root => edit(root["quantization"]!["quantized_layers"]!.AsObject()));
        editor.Json("config.json", root =>
        {
            var config = root["quantization_config"]!.AsObject();
            var layers = config["quantized_layers"]!.AsObject();
            var before = layers.Select(kv => kv.Key).ToHashSet();
            edit(layers);
            var groups = config["config_groups"]!.AsObject();
            foreach (var (_, g) in groups)
            {
                var targets = g!["targets"]!.AsArray();
                foreach (var gone in targets.Where(t => !layers.ContainsKey(t!.GetValue<string>())).ToList()) targets.Remove(gone);
            }
            foreach (var added in layers.Select(kv => kv.Key).Where(k => !before.Contains(k)))
                groups[$"group_{group}"]!["targets"]!.AsArray().Add(added);
        });
    }

    private static string Failures(VerificationReport report) =>
        report.Summary + Environment.NewLine + string.Join(Environment.NewLine, report.Failures.Select(f => f.ToString()));
}
