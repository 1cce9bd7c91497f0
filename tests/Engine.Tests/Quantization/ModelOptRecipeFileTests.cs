using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>
/// Recipe files in the shapes of ModelOpt's <c>modelopt_recipes/</c> (written here, not copied): two-document units (an
/// <c>imports</c> header, <c>---</c>, the list), recipes with <c>imports</c>/<c>metadata</c>/<c>quantize</c>, <c>$import</c>
/// of numerics with sibling keys, a single-mapping unit, a recipe importing another recipe's quant_cfg snippet. Loaded
/// from a recipe tree and alone (built-in units), each must give the same plan as the built-in preset.
/// </summary>
public class ModelOptRecipeFileTests : IClassFixture<FamilyModels>, IDisposable
{
    private const string MixedSnippet = "huggingface/qwen3_5/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast.quant_cfg.yaml";
    private const string MixedMoeRecipe = "huggingface/qwen3_5_moe/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast.yaml";
    private const string MixedDenseRecipe = "huggingface/qwen3_5/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast.yaml";
    private const string ExpertsRecipe = "general/ptq/nvfp4_experts_only-kv_fp8_cast.yaml";

    private readonly FamilyModels _models;
    private readonly TempFolder _tmp = new();

    public ModelOptRecipeFileTests(FamilyModels models) => _models = models;

    public void Dispose() => _tmp.Dispose();

    /// <summary>The units a ModelOpt recipe tree holds, in its file shapes.</summary>
    private static readonly Dictionary<string, string> Units = new()
    {
        ["configs/numerics/fp8.yaml"] = """
            # FP8 E4M3, one scale per tensor.
            num_bits: e4m3
            axis:
            """,
        ["configs/numerics/nvfp4.yaml"] = """
            # NVFP4: E2M1 values in blocks of 16 along the last axis, E4M3 block scales.
            num_bits: e2m1
            block_sizes:
              -1: 16
              type: dynamic
              scale_bits: e4m3
            effective_bits: 4.5
            """,
        ["configs/ptq/units/base_disable_all.yaml"] = """
            # One entry, written as a mapping.
            quantizer_name: '*'
            enable: false
            """,
        ["configs/ptq/units/kv_fp8_cast.yaml"] = """
            # modelopt-schema: a unit list
            imports:
              fp8: configs/numerics/fp8
            ---
              - quantizer_name: '*[kv]_bmm_quantizer'
                cfg:
                  $import: fp8
                  use_constant_amax: true
            """,
        ["configs/ptq/units/default_disabled_quantizers.yaml"] = string.Join("\n",
            new[]
            {
                "*block_sparse_moe.gate*", "*linear_attn.conv1d*", "*linear_attn.in_proj_a*", "*linear_attn.in_proj_b*", "*lm_head*",
                "*mixer.conv1d*", "*mlp.gate.*", "*mlp.shared_expert_gate.*", "*output_layer*", "*proj_out.*", "*router*", "mtp.*",
                "output.*", "*embed_vision*", "*vision_tower*", "*visual*", "*vision_model*", "*multi_modal_projector*",
            }.Select(p => $"  - quantizer_name: '{p}'\n    enable: false")
            .Concat(new[] { "nn.BatchNorm1d", "nn.BatchNorm2d", "nn.BatchNorm3d", "nn.LeakyReLU", "nn.Embedding" }
                .Select(c => $"  - parent_class: '{c}'\n    quantizer_name: '*'\n    enable: false"))
            .Prepend("# Quantizers no recipe should touch.")) + "\n",
        [MixedSnippet] = """
            # The Qwen3.5 mixed-precision quant_cfg, shared by the dense and MoE recipes.
            imports:
              base_disable_all: configs/ptq/units/base_disable_all
              default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers
              fp8: configs/numerics/fp8
              kv_fp8_cast: configs/ptq/units/kv_fp8_cast
              nvfp4: configs/numerics/nvfp4
            ---
              - $import: base_disable_all
              - quantizer_name: '*mlp*gate_proj*weight_quantizer*'
                cfg: {$import: nvfp4}
              - quantizer_name: '*mlp*up_proj*weight_quantizer*'
                cfg: {$import: nvfp4}
              - quantizer_name: '*mlp*down_proj*weight_quantizer*'
                cfg: {$import: nvfp4}
              - quantizer_name: '*self_attn*weight_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*self_attn*input_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.in_proj_qkv*weight_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.in_proj_qkv*input_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.in_proj_z*weight_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.in_proj_z*input_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.out_proj*weight_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*linear_attn.out_proj*input_quantizer'
                cfg: {$import: fp8}
              - $import: kv_fp8_cast
              - $import: default_disabled_quantizers
              - quantizer_name: '*linear_attn.in_proj_a*'
                enable: false
              - quantizer_name: '*linear_attn.in_proj_b*'
                enable: false
              - quantizer_name: '*visual*'
                enable: false
              - quantizer_name: '*vision_tower*'
                enable: false
              - quantizer_name: '*mtp*'
                enable: false
              - quantizer_name: '*lm_head*weight_quantizer'
                cfg: {$import: nvfp4}
            """,
        [MixedMoeRecipe] = MixedRecipe("qwen3_5_moe"),
        [MixedDenseRecipe] = MixedRecipe("qwen3_5"),
        [ExpertsRecipe] = """
            # Routed experts in NVFP4, FP8 KV cache cast.
            imports:
              base_disable_all: configs/ptq/units/base_disable_all
              default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers
              nvfp4: configs/numerics/nvfp4
              kv_fp8_cast: configs/ptq/units/kv_fp8_cast

            metadata:
              recipe_type: ptq
              description: >-
                NVFP4 on the experts' weights and inputs, FP8 KV cache with a constant amax.
            quantize:
              algorithm:
                method: max
                layerwise: {enable: false}
              quant_cfg:
                - $import: base_disable_all
                - quantizer_name: '*.experts.*weight_quantizer'
                  cfg:
                    $import: nvfp4
                - quantizer_name: '*.experts.*input_quantizer'
                  cfg:
                    $import: nvfp4
                - quantizer_name: '*block_sparse_moe*weight_quantizer'
                  cfg:
                    $import: nvfp4
                - quantizer_name: '*block_sparse_moe*input_quantizer'
                  cfg:
                    $import: nvfp4
                - $import: kv_fp8_cast
                - $import: default_disabled_quantizers
            """,
    };

    private static string MixedRecipe(string family) => $$"""
        # The {{family}} recipe: everything is in the shared quant_cfg.
        imports:
          shared_quant_cfg: huggingface/qwen3_5/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast.quant_cfg

        metadata:
          recipe_type: ptq
          description: >-
            NVFP4 weights on the MLPs and lm_head, FP8 attention, FP8 KV cache cast ({{family}}).
        quantize:
          algorithm:
            method: max
            layerwise:
              enable: false
          quant_cfg:
            - $import: shared_quant_cfg
        """;

    /// <summary>Writes the recipe tree (<c>modelopt_recipes/…</c>) under <paramref name="root"/>, optionally with some files replaced.</summary>
    private string Tree(string root, IReadOnlyDictionary<string, string>? replaced = null)
    {
        foreach (var (relative, text) in Units)
        {
            string path = _tmp.Combine(Path.Combine(root, "modelopt_recipes", relative));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, replaced is not null && replaced.TryGetValue(relative, out var other) ? other : text);
        }
        return _tmp.Combine(Path.Combine(root, "modelopt_recipes"));
    }

    /// <summary>One file alone in its own folder: its imports can only resolve to the built-in units.</summary>
    private string Alone(string relative)
    {
        string folder = _tmp.Combine("alone-" + relative.Replace('/', '-'));
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, Path.GetFileName(relative));
        File.WriteAllText(path, Units[relative]);
        return path;
    }

    /// <summary>The entries as ModelOpt would apply them (pattern, enable, format, parent class), without where they came from.</summary>
    private static List<RecipeEntry> Applied(QuantRecipe recipe) => recipe.Entries.Select(e => e with { Source = "" }).ToList();

    /// <summary>Everything a plan decides: every module and expert unit, the KV cache, the algorithm, what calibration measures.</summary>
    private static string Describe(QuantPlan plan) => string.Join("\n",
        plan.Modules.Select(m => $"{m.Name} {m.Decision} #{m.EntryPosition} {m.EntryPattern} {string.Join(",", m.ExpertUnits.Select(u => u.Decision))} " +
                                 string.Join(",", m.Quantizers.Select(q => $"{q.Enabled}:{q.Format}")))
            .Concat(plan.KvCache.Layers.Select(l => $"{l.Attention} {l.Mode} {l.Key.Format} {l.Value.Format} #{l.Key.DecidedBy?.Position}"))
            .Append($"{plan.QuantAlgo} {plan.KvCache.Mode} {string.Join(",", plan.CalibratedQuantizers)}"));

    private void AssertSamePlan(string family, string preset, QuantRecipe fromFile)
    {
        var builtIn = Presets.Get(preset);
        Assert.Equal(Applied(builtIn), Applied(fromFile));
        Assert.Equal(QuantAlgorithm.Max, fromFile.Algorithm);
        var model = _models[family];
        Assert.Equal(Describe(QuantPlanner.Plan(model, builtIn)), Describe(QuantPlanner.Plan(model, fromFile)));
    }

    [Theory]
    [InlineData("qwen3_5_moe", MixedMoeRecipe)]
    [InlineData(DenseQwen3_5.Family, MixedDenseRecipe)]
    public void QwenRecipeInARecipeTreeEqualsThePreset(string family, string recipe)
    {
        string root = Tree("tree-" + family);
        var loaded = RecipeFile.Load(Path.Combine(root, recipe));
        AssertSamePlan(family, "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST", loaded);
        // The tree's files were used, not the built-in copies: the single-mapping base_disable_all, the two-document units.
        Assert.EndsWith("w4a16_nvfp4-fp8_attn-kv_fp8_cast.quant_cfg.yaml > base_disable_all.yaml", loaded.Entries[0].Source);
        Assert.EndsWith("> kv_fp8_cast.yaml", loaded.Entries.Single(e => e.Pattern == Presets.KvCachePattern).Source);
        Assert.DoesNotContain(loaded.Entries, e => e.Source.Contains("built-in", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("qwen3_5_moe", MixedMoeRecipe)]
    [InlineData(DenseQwen3_5.Family, MixedDenseRecipe)]
    [InlineData("qwen3_5_moe", MixedSnippet)]
    public void QwenRecipeAloneResolvesToTheBuiltInUnits(string family, string recipe)
    {
        var loaded = RecipeFile.Load(Alone(recipe));
        AssertSamePlan(family, "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST", loaded);
        Assert.Contains("(built-in)", loaded.Entries[0].Source);
    }

    [Theory]
    [InlineData("qwen3_5_moe")]
    [InlineData("mixtral")]
    [InlineData("qwen3_next")]
    public void ExpertsOnlyRecipeEqualsThePresetInATreeAndAlone(string family)
    {
        var inTree = RecipeFile.Load(Path.Combine(Tree("tree-experts-" + family), ExpertsRecipe));
        AssertSamePlan(family, "NVFP4_EXPERTS_ONLY_KV_FP8_CAST", inTree);
        Assert.EndsWith("> base_disable_all.yaml", inTree.Entries[0].Source);
        AssertSamePlan(family, "NVFP4_EXPERTS_ONLY_KV_FP8_CAST", RecipeFile.Load(Alone(ExpertsRecipe)));
    }

    [Fact]
    public void AUnitInTheTreeWinsOverItsBuiltInCopy()
    {
        // The same recipe in a tree whose kv_fp8_cast unit lost its constant amax: the KV cache is scaled, and calibrated.
        string root = Tree("tree-scaled", new Dictionary<string, string>
        {
            ["configs/ptq/units/kv_fp8_cast.yaml"] = """
                imports:
                  fp8: configs/numerics/fp8
                ---
                  - quantizer_name: '*[kv]_bmm_quantizer'
                    cfg:
                      $import: fp8
                """,
        });
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], RecipeFile.Load(Path.Combine(root, MixedMoeRecipe)));
        Assert.Equal(KvCacheMode.Fp8Scaled, plan.KvCache.Mode);
        Assert.Contains("model.language_model.layers.3.self_attn.k_bmm_quantizer", plan.CalibratedQuantizers);
        Assert.Contains("model.language_model.layers.3.self_attn.v_bmm_quantizer", plan.CalibratedQuantizers);
    }

    [Fact]
    public void NumericsImportTakesSiblingKeys()
    {
        var recipe = _tmp.Combine("pinned.yaml");
        File.WriteAllText(recipe, """
            imports:
              fp8: configs/numerics/fp8
              base_disable_all: configs/ptq/units/base_disable_all
            ---
              - $import: base_disable_all
              - quantizer_name: '*self_attn*weight_quantizer'
                cfg: {$import: fp8}
              - quantizer_name: '*self_attn*input_quantizer'
                cfg: {$import: fp8, constant_amax: 12.5}
              - quantizer_name: '*[kv]_bmm_quantizer'
                cfg:
                  $import: fp8
                  use_constant_amax: true
            """);
        var plan = QuantPlanner.Plan(_models["llama"], RecipeFile.Load(recipe));
        Assert.Equal("FP8", plan.QuantAlgo);
        var q = plan.Modules.Single(m => m.Name == "model.layers.0.self_attn.q_proj");
        Assert.Equal(QuantDecision.Fp8, q.Decision);
        var input = q.Quantizers.Single(s => s.Quantizer.Role == QuantizerRole.Input).Format!;
        Assert.Equal(12.5f, input.ConstantAmax);
        Assert.Equal(12.5f, input.PinnedAmax);
        Assert.True(input.IsFp8PerTensor);
        // Every FP8 input and the KV cache are pinned: nothing to calibrate.
        Assert.Equal(KvCacheMode.Fp8Cast, plan.KvCache.Mode);
        Assert.Empty(plan.CalibratedQuantizers);
        Assert.False(plan.NeedsCalibration);

        // ModelOpt refuses both ways of pinning at once; so does the loader.
        var both = _tmp.Combine("both.yaml");
        File.WriteAllText(both, "quant_cfg:\n  - quantizer_name: '*input_quantizer'\n    cfg: {$import: configs/numerics/fp8, constant_amax: 2.0, use_constant_amax: true}\n");
        var ex = Assert.Throws<ModelOptException>(() => RecipeFile.Load(both));
        Assert.Equal("RecipeInvalid", ex.ErrorId);
        Assert.Contains("mutually exclusive", ex.Message);
    }

    [Theory]
    [InlineData("algorithm: awq_lite", "'awq_lite'")]
    [InlineData("algorithm:\n    method: smoothquant\n    alpha: 0.5", "'smoothquant'")]
    [InlineData("algorithm:\n    method: mse\n    step_size: 0.2", "step_size 0.2")]
    [InlineData("algorithm:\n    method: local_hessian\n    fp8_scale_sweep: false", "without fp8_scale_sweep")]
    [InlineData("algorithm:\n    method: gptq\n    block_size: 100", "block_size 100")]
    [InlineData("algorithm:\n    method: gptq\n    perc_damp: 0", "perc_damp 0")]
    public void CalibrationAlgorithmsNotImplementedAreRefused(string algorithm, string named)
    {
        var path = _tmp.Combine($"algorithm-{algorithm.GetHashCode():x}.yaml");
        File.WriteAllText(path, $"quantize:\n  {algorithm}\n  quant_cfg:\n    - $import: configs/ptq/units/w4_nvfp4\n");
        var ex = Assert.Throws<ModelOptException>(() => RecipeFile.Load(path));
        Assert.Equal(QuantizationErrorIds.UnsupportedCalibrationAlgorithm, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains(named, ex.Message);
        Assert.Equal(path, ex.Path);
    }

    [Fact]
    public void ThreeDocumentsAreRefused()
    {
        var path = _tmp.Combine("three.yaml");
        File.WriteAllText(path, "imports: {}\n---\n- quantizer_name: '*'\n  enable: false\n---\n- quantizer_name: '*'\n");
        var ex = Assert.Throws<ModelOptException>(() => RecipeFile.Load(path));
        Assert.Equal("RecipeInvalid", ex.ErrorId);
        Assert.Equal(path, ex.Path);
    }
}
