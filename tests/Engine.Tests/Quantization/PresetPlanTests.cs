using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>Per preset and per family: exactly which modules are quantized.</summary>
public class PresetPlanTests : IClassFixture<FamilyModels>
{
    private readonly FamilyModels _models;

    public PresetPlanTests(FamilyModels models) => _models = models;

    [Theory]
    // family, preset, quantized modules (fused experts count once per container), expected algo
    [InlineData("llama", "NVFP4_DEFAULT", 14, "NVFP4")]
    [InlineData("llama", "NVFP4_MLP_ONLY", 6, "NVFP4")]
    [InlineData("llama", "NVFP4_OMLP_ONLY", 8, "NVFP4")]
    [InlineData("llama", "W4A16_NVFP4", 14, "W4A16_NVFP4")]
    [InlineData("qwen2", "NVFP4_DEFAULT", 14, "NVFP4")]
    [InlineData("qwen2", "NVFP4_MLP_ONLY", 6, "NVFP4")]
    [InlineData("qwen2", "NVFP4_OMLP_ONLY", 8, "NVFP4")]
    [InlineData("qwen2", "W4A16_NVFP4", 14, "W4A16_NVFP4")]
    [InlineData("qwen3", "NVFP4_DEFAULT", 14, "NVFP4")]
    [InlineData("qwen3", "NVFP4_MLP_ONLY", 6, "NVFP4")]
    [InlineData("qwen3", "NVFP4_OMLP_ONLY", 8, "NVFP4")]
    [InlineData("qwen3", "W4A16_NVFP4", 14, "W4A16_NVFP4")]
    [InlineData("qwen3_moe", "NVFP4_DEFAULT", 56, "NVFP4")]
    [InlineData("qwen3_moe", "NVFP4_MLP_ONLY", 48, "NVFP4")]
    [InlineData("qwen3_moe", "NVFP4_EXPERTS_ONLY", 48, "NVFP4")]
    [InlineData("qwen3_moe", "NVFP4_OMLP_ONLY", 50, "NVFP4")]
    [InlineData("qwen3_moe", "W4A16_NVFP4", 56, "W4A16_NVFP4")]
    [InlineData("mixtral", "NVFP4_DEFAULT", 32, "NVFP4")]
    [InlineData("mixtral", "NVFP4_MLP_ONLY", 24, "NVFP4")]
    [InlineData("mixtral", "NVFP4_EXPERTS_ONLY", 24, "NVFP4")]
    [InlineData("mixtral", "NVFP4_OMLP_ONLY", 26, "NVFP4")]
    [InlineData("mixtral", "W4A16_NVFP4", 32, "W4A16_NVFP4")]
    [InlineData("qwen3_next", "NVFP4_DEFAULT", 118, "NVFP4")]
    [InlineData("qwen3_next", "NVFP4_MLP_ONLY", 108, "NVFP4")]
    [InlineData("qwen3_next", "NVFP4_EXPERTS_ONLY", 96, "NVFP4")]
    [InlineData("qwen3_next", "NVFP4_OMLP_ONLY", 109, "NVFP4")]
    [InlineData("qwen3_next", "W4A16_NVFP4", 118, "W4A16_NVFP4")]
    [InlineData("qwen3_5_moe", "NVFP4_DEFAULT", 29, "NVFP4")]
    [InlineData("qwen3_5_moe", "NVFP4_MLP_ONLY", 16, "NVFP4")]
    [InlineData("qwen3_5_moe", "NVFP4_EXPERTS_ONLY", 4, "NVFP4")]
    [InlineData("qwen3_5_moe", "NVFP4_OMLP_ONLY", 17, "NVFP4")]
    [InlineData("qwen3_5_moe", "W4A16_NVFP4", 29, "W4A16_NVFP4")]
    public void PresetQuantizesExpectedModuleCount(string family, string preset, int quantized, string algo)
    {
        var plan = QuantPlanner.Plan(_models[family], Presets.Get(preset));
        Assert.Equal(quantized, plan.QuantizedCount);
        Assert.Equal(algo, plan.QuantAlgo);
        Assert.Equal(algo == "NVFP4", plan.NeedsCalibration);
        Assert.Empty(plan.Warnings);
        // Nothing outside the text model, no router, no embedding, no norm is ever quantized by a preset.
        Assert.DoesNotContain(plan.Modules, m => m.IsQuantized && (m.Section != ModelSection.Text || m.Kind is not (ModuleKind.Linear or ModuleKind.FusedExperts)));
        Assert.DoesNotContain(plan.Modules, m => m.IsQuantized && m.Name.Contains("lm_head"));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    public void ExpertsOnlyOnDenseModelIsAnEmptyPlanError(string family)
    {
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models[family], Presets.Get("NVFP4_EXPERTS_ONLY")));
        Assert.Equal("PlanQuantizesNothing", ex.ErrorId);
        var allowed = QuantPlanner.Plan(_models[family], Presets.Get("NVFP4_EXPERTS_ONLY"), allowEmpty: true);
        Assert.Equal(0, allowed.QuantizedCount);
        Assert.Null(allowed.QuantAlgo);
    }

    /// <summary>The issue's Done-when list for the fused-expert Qwen3.5-MoE under NVFP4_DEFAULT, module by module.</summary>
    [Fact]
    public void Qwen35MoeDefaultQuantizesExactlyTheRightModules()
    {
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], Presets.Get("NVFP4_DEFAULT"));
        string[] neverQuantized = ["lm_head", ".mlp.gate", "shared_expert_gate", "embed_tokens", "conv1d", "in_proj_a", "in_proj_b"];
        foreach (var m in plan.Modules)
        {
            bool expected = m.Section == ModelSection.Text
                && m.Kind is ModuleKind.Linear or ModuleKind.FusedExperts
                && !neverQuantized.Any(n => m.Name.EndsWith(n, StringComparison.Ordinal));
            Assert.True(expected == m.IsQuantized, $"{m.Name}: expected quantized={expected}, plan says {m.Decision} ({m.Reason})");
        }
        // Every expert's gate/up/down of every layer.
        var fused = plan.Modules.Where(m => m.Kind == ModuleKind.FusedExperts && m.Section == ModelSection.Text).ToList();
        Assert.Equal(4, fused.Count);
        Assert.All(fused, f =>
        {
            Assert.Equal(QuantDecision.Nvfp4, f.Decision);
            Assert.Equal(16, f.ExpertUnits.Count);
            Assert.All(f.ExpertUnits, u => Assert.Equal(QuantDecision.Nvfp4, u.Decision));
        });
        // Named examples from each group.
        Assert.Equal(QuantDecision.Nvfp4, Decision(plan, "model.language_model.layers.3.self_attn.q_proj"));
        Assert.Equal(QuantDecision.Nvfp4, Decision(plan, "model.language_model.layers.0.mlp.shared_expert.down_proj"));
        Assert.Equal(QuantDecision.Nvfp4, Decision(plan, "model.language_model.layers.0.linear_attn.in_proj_qkv"));
        Assert.Equal(QuantDecision.Nvfp4, Decision(plan, "model.language_model.layers.1.linear_attn.in_proj_z"));
        Assert.Equal(QuantDecision.Nvfp4, Decision(plan, "model.language_model.layers.2.linear_attn.out_proj"));
        Assert.Equal(QuantDecision.Unquantized, Decision(plan, "model.language_model.layers.0.linear_attn.in_proj_a"));
        Assert.Equal(QuantDecision.Unquantized, Decision(plan, "mtp.layers.0.mlp.experts"));
        Assert.Equal(QuantDecision.Unquantized, Decision(plan, "mtp.fc"));
        Assert.Equal(QuantDecision.Unquantized, Decision(plan, "model.visual.blocks.0.attn.qkv"));
        // The deciding entries are reported.
        var lmHead = plan.Modules.Single(m => m.Name == "lm_head");
        Assert.Equal("*lm_head*", lmHead.EntryPattern);
        Assert.Equal("default-disabled", lmHead.DecidedBy!.Source);
        Assert.Contains("disabled by #", lmHead.Reason);
        var visual = plan.Modules.Single(m => m.Name == "model.visual.blocks.0.attn.qkv");
        Assert.Equal("*visual*", visual.EntryPattern);
        var q = plan.Modules.Single(m => m.Name == "model.language_model.layers.3.self_attn.q_proj");
        Assert.Equal(("*weight_quantizer", 2), (q.EntryPattern!, q.EntryPosition!.Value));
    }

    [Fact]
    public void FusedExpertQuantizersAreNamedLikeModelOpt()
    {
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], Presets.Get("NVFP4_DEFAULT"));
        var experts = plan.Modules.Single(m => m.Name == "model.language_model.layers.0.mlp.experts");
        var names = experts.Quantizers.Select(q => q.Name).ToList();
        Assert.Contains("model.language_model.layers.0.mlp.experts.gate_up_proj_weight_quantizers.7", names);
        Assert.Contains("model.language_model.layers.0.mlp.experts.down_proj_weight_quantizers.0", names);
        Assert.Contains("model.language_model.layers.0.mlp.experts.gate_up_proj_input_quantizer", names);
        Assert.Contains("model.language_model.layers.0.mlp.experts.down_proj_input_quantizer", names);
        Assert.Equal(2 * 8 + 2, names.Count);
    }

    private static QuantDecision Decision(QuantPlan plan, string module) => plan.Modules.Single(m => m.Name == module).Decision;
}

/// <summary>One imported checkpoint per family (the generated ones and the dense Qwen3.5), shared by the plan tests.</summary>
public sealed class FamilyModels : IDisposable
{
    private readonly TempFolder _tmp = new();
    private readonly Dictionary<string, HFModel> _models = [];

    /// <summary>Every family a model is loaded for: <see cref="TinyCheckpoints.Families"/> and <see cref="DenseQwen3_5.Family"/>.</summary>
    public static IReadOnlyList<string> All { get; } = [.. TinyCheckpoints.Families, DenseQwen3_5.Family];

    public FamilyModels()
    {
        foreach (var family in TinyCheckpoints.Families)
            _models[family] = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family)));
        _models[DenseQwen3_5.Family] = ModelImporter.Import(DenseQwen3_5.Recipe().Write(_tmp.Combine(DenseQwen3_5.Family)));
    }

    public HFModel this[string family] => _models[family];

    public string Folder => _tmp.Path;

    public void Dispose()
    {
        foreach (var m in _models.Values) m.Dispose();
        _tmp.Dispose();
    }
}
