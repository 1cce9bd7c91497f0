using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>
/// The two presets that reproduce NVIDIA's published Qwen3.5/3.6 NVFP4 checkpoints, on every family. The expected layer
/// patterns are NVIDIA's hf_quant_config.json files as copied in ai-dynamo/aiconfigurator
/// (aic-core/src/aiconfigurator_core/model_configs/nvidia--Qwen3.6-35B-A3B-NVFP4_hf_quant_config.json,
/// nvidia--Qwen3.6-27B-NVFP4_hf_quant_config.json, nvidia--Qwen3.5-397B-A17B-NVFP4_hf_quant_config.json), with the
/// layer index of each quantized_layers key replaced by '*'.
/// </summary>
public class NvidiaPresetPlanTests : IClassFixture<FamilyModels>
{
    private const string Mixed = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";
    private const string ExpertsOnly = "NVFP4_EXPERTS_ONLY_KV_FP8_CAST";

    /// <summary>nvidia/Qwen3.6-35B-A3B-NVFP4 quantized_layers (quant_algo MIXED_PRECISION, kv_cache_quant_algo FP8).</summary>
    private static readonly Dictionary<string, string> Qwen36MoeLayers = new()
    {
        ["lm_head"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.linear_attn.in_proj_qkv"] = "FP8",
        ["model.language_model.layers.*.linear_attn.in_proj_z"] = "FP8",
        ["model.language_model.layers.*.linear_attn.out_proj"] = "FP8",
        ["model.language_model.layers.*.mlp.experts"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.mlp.shared_expert.down_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.mlp.shared_expert.gate_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.mlp.shared_expert.up_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.self_attn.k_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.o_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.q_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.v_proj"] = "FP8",
    };

    /// <summary>nvidia/Qwen3.6-27B-NVFP4 quantized_layers: the same with a dense MLP.</summary>
    private static readonly Dictionary<string, string> Qwen36DenseLayers = new()
    {
        ["lm_head"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.linear_attn.in_proj_qkv"] = "FP8",
        ["model.language_model.layers.*.linear_attn.in_proj_z"] = "FP8",
        ["model.language_model.layers.*.linear_attn.out_proj"] = "FP8",
        ["model.language_model.layers.*.mlp.down_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.mlp.gate_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.mlp.up_proj"] = "W4A16_NVFP4",
        ["model.language_model.layers.*.self_attn.k_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.o_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.q_proj"] = "FP8",
        ["model.language_model.layers.*.self_attn.v_proj"] = "FP8",
    };

    private readonly FamilyModels _models;

    public NvidiaPresetPlanTests(FamilyModels models) => _models = models;

    public static TheoryData<string> AllFamilies => [.. FamilyModels.All];

    [Theory]
    [InlineData("qwen3_5_moe")]
    [InlineData(DenseQwen3_5.Family)]
    public void MixedPresetGivesNvidiasQwen36Layers(string family)
    {
        var plan = QuantPlanner.Plan(_models[family], Presets.Get(Mixed));
        var expected = family == "qwen3_5_moe" ? Qwen36MoeLayers : Qwen36DenseLayers;

        // Exactly NVIDIA's quantized_layers, algorithm for algorithm, and every layer of each pattern.
        var quantized = plan.Modules.Where(m => m.IsQuantized).ToList();
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal).ToList(),
            quantized.GroupBy(m => PlanGuards.SiblingKey(m.Name))
                .Select(g => KeyValuePair.Create(g.Key, Assert.Single(g.Select(m => m.Decision.QuantAlgo()).Distinct())!))
                .OrderBy(p => p.Key, StringComparer.Ordinal).ToList());
        Assert.All(quantized, m => Assert.Equal(ModelSection.Text, m.Section));
        Assert.Equal(4, quantized.Count(m => m.Name.EndsWith(".linear_attn.in_proj_qkv", StringComparison.Ordinal) || m.Name.EndsWith(".self_attn.q_proj", StringComparison.Ordinal)));
        if (family == "qwen3_5_moe")
        {
            var experts = quantized.Where(m => m.Kind == ModuleKind.FusedExperts).ToList();
            Assert.Equal(4, experts.Count);
            Assert.All(experts.SelectMany(e => e.ExpertUnits), u => Assert.Equal(QuantDecision.W4A16Nvfp4, u.Decision));
        }

        // What stays in the source dtype, by name.
        string[] unquantized =
        [
            "linear_attn.in_proj_a", "linear_attn.in_proj_b", "linear_attn.conv1d", "mlp.gate", "mlp.shared_expert_gate",
            "embed_tokens", "norm",
        ];
        foreach (var m in plan.Modules.Where(m => unquantized.Any(u => m.Name.EndsWith(u, StringComparison.Ordinal)) || m.Kind == ModuleKind.Norm))
            Assert.False(m.IsQuantized, $"{m.Name} must stay unquantized: {m.Reason}");
        Assert.All(plan.Modules.Where(m => m.Name.StartsWith("mtp.", StringComparison.Ordinal) || m.Name.StartsWith("model.visual.", StringComparison.Ordinal)),
            m => Assert.False(m.IsQuantized, m.Name));
        Assert.Contains(plan.Modules, m => m.Name == "mtp.layers.0.self_attn.q_proj" && m.EntryPattern == "*mtp*");
        Assert.Contains(plan.Modules, m => m.Name == "model.language_model.layers.0.linear_attn.in_proj_a" && m.EntryPattern == "*linear_attn.in_proj_a*");

        // lm_head: turned back on by the preset's last entry, weights only.
        var lmHead = plan.Modules.Single(m => m.Name == "lm_head");
        Assert.Equal(QuantDecision.W4A16Nvfp4, lmHead.Decision);
        Assert.Equal(plan.Recipe.Entries.Count, lmHead.EntryPosition);

        Assert.Equal("MIXED_PRECISION", plan.QuantAlgo);
        Assert.Equal(["FP8", "W4A16_NVFP4"], plan.Formats);
        Assert.Empty(plan.Warnings);

        // KV cache: FP8 cast on the one full-attention layer (layer 3); linear attention and the MTP head have none.
        Assert.Equal(KvCacheMode.Fp8Cast, plan.KvCache.Mode);
        Assert.Equal("FP8", plan.KvCache.QuantAlgo);
        var layer = Assert.Single(plan.KvCache.Layers);
        Assert.Equal("model.language_model.layers.3.self_attn", layer.Attention);
        Assert.Equal(KvCacheMode.Fp8Cast, layer.Mode);
        Assert.Equal("model.language_model.layers.3.self_attn.k_bmm_quantizer", layer.Key.Name);
        Assert.Equal(E4M3Max, layer.Key.Format!.PinnedAmax);

        // Calibration: the FP8 inputs only (W4A16 needs none, the cast KV cache is pinned).
        Assert.True(plan.NeedsCalibration);
        var fp8Inputs = plan.Modules.Where(m => m.Decision == QuantDecision.Fp8).Select(m => m.Name + ".input_quantizer").Order(StringComparer.Ordinal);
        Assert.Equal(fp8Inputs, plan.CalibratedQuantizers.Order(StringComparer.Ordinal));
        Assert.Equal(3 * 3 + 4, plan.CalibratedQuantizers.Count);
    }

    private const float E4M3Max = 448f;

    /// <summary>The decision the mixed preset's patterns give a module, written out by name and role for every family.</summary>
    private static QuantDecision MixedPatternsSay(ModulePlan m)
    {
        if (m.Section != ModelSection.Text) return QuantDecision.Unquantized;
        string role = ModuleClassifier.LastComponent(m.Name);
        return m.Kind switch
        {
            ModuleKind.FusedExperts when m.Name.Contains(".mlp.", StringComparison.Ordinal) => QuantDecision.W4A16Nvfp4,
            ModuleKind.Linear when m.Name == "lm_head" => QuantDecision.W4A16Nvfp4,
            ModuleKind.Linear when m.Name.Contains(".self_attn.", StringComparison.Ordinal) && role is "q_proj" or "k_proj" or "v_proj" or "o_proj" => QuantDecision.Fp8,
            ModuleKind.Linear when m.Name.Contains(".linear_attn.", StringComparison.Ordinal)
                                   && role is "in_proj_qkv" or "in_proj_z" or "in_proj_qkvz" or "out_proj" => QuantDecision.Fp8,
            ModuleKind.Linear when m.Name.Contains(".mlp.", StringComparison.Ordinal) && role is "gate_proj" or "up_proj" or "down_proj" => QuantDecision.W4A16Nvfp4,
            _ => QuantDecision.Unquantized,
        };
    }

    [Theory]
    [MemberData(nameof(AllFamilies))]
    public void MixedPresetOnEveryFamilyQuantizesWhatItsPatternsSay(string family)
    {
        var model = _models[family];
        var plan = QuantPlanner.Plan(model, Presets.Get(Mixed));
        foreach (var m in plan.Modules)
            Assert.True(MixedPatternsSay(m) == m.Decision, $"{family} {m.Name}: patterns say {MixedPatternsSay(m)}, plan says {m.Decision} ({m.Reason})");

        // Merged layers (q/k/v, gate/up, in_proj_qkv/z, an expert's w13) agree.
        Assert.All(plan.Modules.Where(m => MergedLayers.Of(m.Module) is not null).GroupBy(m => MergedLayers.Of(m.Module)),
            g => Assert.Single(g.Select(m => m.Decision).Distinct()));
        Assert.Equal("MIXED_PRECISION", plan.QuantAlgo);
        Assert.Contains("FP8", plan.Formats);

        // Mixtral's experts are w1/w2/w3 under block_sparse_moe: the Qwen patterns leave them in bf16.
        if (family == "mixtral")
            Assert.All(plan.Modules.Where(m => m.Expert is not null), m => Assert.Equal(QuantDecision.Unquantized, m.Decision));

        // The KV cache of every softmax-attention layer of the language model, cast.
        var attention = model.Modules.Where(m => m.Section == ModelSection.Text && m.Name.EndsWith(".self_attn.k_proj", StringComparison.Ordinal))
            .Select(m => m.Name[..^".k_proj".Length]).ToList();
        Assert.NotEmpty(attention);
        Assert.Equal(attention, plan.KvCache.Layers.Select(l => l.Attention));
        Assert.All(plan.KvCache.Layers, l => Assert.Equal(KvCacheMode.Fp8Cast, l.Mode));
        Assert.DoesNotContain(plan.CalibratedQuantizers, q => q.EndsWith("_bmm_quantizer", StringComparison.Ordinal));
        Assert.True(plan.NeedsCalibration);
    }

    [Theory]
    [InlineData("qwen3_5_moe", 4)]
    [InlineData("qwen3_moe", 48)]
    [InlineData("mixtral", 24)]
    [InlineData("qwen3_next", 96)]
    public void ExpertsOnlyPresetQuantizesRoutedExpertsOnly(string family, int quantized)
    {
        var plan = QuantPlanner.Plan(_models[family], Presets.Get(ExpertsOnly));
        Assert.Equal(quantized, plan.QuantizedCount);
        foreach (var m in plan.Modules.Where(m => m.IsQuantized))
        {
            Assert.Equal(ModelSection.Text, m.Section);
            Assert.Equal(QuantDecision.Nvfp4, m.Decision);
            Assert.True(m.Kind == ModuleKind.FusedExperts || m.Expert is not null, $"{m.Name} is not a routed expert");
        }
        // Shared experts, attention, routers and lm_head stay bf16 (nvidia/Qwen3.5-397B-A17B-NVFP4's exclude_modules).
        Assert.DoesNotContain(plan.Modules, m => m.IsQuantized && (m.Name.Contains("shared_expert", StringComparison.Ordinal)
                                                                  || m.Name.Contains("attn", StringComparison.Ordinal) || m.Name == "lm_head"));
        Assert.Equal("NVFP4", plan.QuantAlgo);
        Assert.Equal(KvCacheMode.Fp8Cast, plan.KvCache.Mode);
        Assert.All(plan.KvCache.Layers, l => Assert.Equal(KvCacheMode.Fp8Cast, l.Mode));
        Assert.Empty(plan.Warnings);
        // W4A4: the experts' input quantizers are calibrated; the cast KV cache is not.
        Assert.True(plan.NeedsCalibration);
        Assert.All(plan.CalibratedQuantizers, q => Assert.Contains("input_quantizer", q));
    }

    [Fact]
    public void ExpertsOnlyPresetOnQwen35MoeCalibratesTheContainersInputs()
    {
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], Presets.Get(ExpertsOnly));
        string[] expected = [.. Enumerable.Range(0, 4).SelectMany(l => new[]
        {
            $"model.language_model.layers.{l}.mlp.experts.down_proj_input_quantizer",
            $"model.language_model.layers.{l}.mlp.experts.gate_up_proj_input_quantizer",
        })];
        Assert.Equal(expected, plan.CalibratedQuantizers.Order(StringComparer.Ordinal));
        Assert.Equal("model.language_model.layers.3.self_attn", Assert.Single(plan.KvCache.Layers).Attention);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData(DenseQwen3_5.Family)]
    public void ExpertsOnlyPresetOnADenseModelSaysWhyNothingIsQuantized(string family)
    {
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models[family], Presets.Get(ExpertsOnly)));
        Assert.Equal("PlanQuantizesNothing", ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidOperation, ex.Kind);
        Assert.Contains("'*.experts.*weight_quantizer'", ex.Message);
        Assert.Contains("match no quantizer of this model", ex.Message);
        Assert.Contains("only its KV cache would be quantized", ex.Message);
        Assert.Equal(_models[family].Path, ex.Path);

        var allowed = QuantPlanner.Plan(_models[family], Presets.Get(ExpertsOnly), allowEmpty: true);
        Assert.Null(allowed.QuantAlgo);
        Assert.Equal(KvCacheMode.Fp8Cast, allowed.KvCache.Mode);
        Assert.False(allowed.NeedsCalibration);
    }

    [Fact]
    public void NewPresetsAreListedAndDescribed()
    {
        Assert.Contains(Mixed, Presets.Names);
        Assert.Contains(ExpertsOnly, Presets.Names);
        Assert.Contains("MIXED_PRECISION", Presets.Describe(Mixed));
        Assert.Contains("KV cache", Presets.Describe(ExpertsOnly));
        Assert.False(Presets.IsWeightOnly(Mixed));
        Assert.False(Presets.IsWeightOnly(ExpertsOnly));
    }
}
