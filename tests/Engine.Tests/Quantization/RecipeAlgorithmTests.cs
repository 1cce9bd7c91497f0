using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>
/// The weight algorithm as data: ModelOpt's spellings of <c>algorithm</c> in recipe files (in the shapes of its
/// <c>general/ptq/*mse*</c>, <c>*gptq*</c> and <c>configs/ptq/presets/model/*local_hessian*</c> recipes, written here),
/// the plan's algorithm per module (NVFP4 weights only), and which algorithms make the plan need calibration.
/// </summary>
public class RecipeAlgorithmTests : IClassFixture<FamilyModels>, IDisposable
{
    private readonly FamilyModels _models;
    private readonly TempFolder _tmp = new();

    public RecipeAlgorithmTests(FamilyModels models) => _models = models;

    public void Dispose() => _tmp.Dispose();

    private string Write(string name, string text)
    {
        string path = _tmp.Combine(name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>ModelOpt's recipe form (general/ptq/nvfp4_experts_only_mse-kv_fp8_cast.yaml and its gptq sibling).</summary>
    private static string Recipe(string algorithm, string weights = "configs/numerics/nvfp4_static") => $"""
        imports:
          base_disable_all: configs/ptq/units/base_disable_all
          default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers
          nvfp4: {weights}
        metadata:
          recipe_type: ptq
        quantize:
          algorithm:
        {algorithm}
          quant_cfg:
            - $import: base_disable_all
            - quantizer_name: '*weight_quantizer'
              cfg:
                $import: nvfp4
            - $import: default_disabled_quantizers
        """;

    public static TheoryData<string, WeightAlgorithm> Spellings() => new()
    {
        { "    method: max\n    layerwise: {enable: false}", WeightAlgorithm.Max },
        { "    method: mse\n    fp8_scale_sweep: true\n    layerwise:\n      enable: false", WeightAlgorithm.MseFp8Sweep },
        { "    method: mse\n    step_size: 0.1\n    start_multiplier: 0.25\n    stop_multiplier: 4.0", WeightAlgorithm.Mse },
        { "    method: mse", WeightAlgorithm.Mse },
        { "    method: local_hessian\n    fp8_scale_sweep: true", WeightAlgorithm.LocalHessian },
        { "    method: local_hessian\n    block_size: 16\n    debug: false", WeightAlgorithm.LocalHessian },
        { "    method: gptq\n    layerwise:\n      enable: true\n      checkpoint_dir: output/layerwise_ckpts/", WeightAlgorithm.Gptq },
    };

    [Theory]
    [MemberData(nameof(Spellings))]
    public void ModelOptSpellingsLoad(string algorithm, WeightAlgorithm expected)
    {
        var recipe = RecipeFile.Load(Write($"r{(uint)algorithm.GetHashCode():x}.yaml", Recipe(algorithm)));
        Assert.Equal(expected, recipe.Algorithm.Weights);
        var plan = QuantPlanner.Plan(_models["llama"], recipe);
        Assert.Equal(expected, plan.WeightAlgorithm);
        Assert.All(plan.Modules.Where(m => m.IsQuantized), m => Assert.Equal(expected, m.Algorithm));
        Assert.All(plan.Modules.Where(m => !m.IsQuantized), m => Assert.Null(m.Algorithm));
        // Weight-only: only the data-dependent algorithms need calibration.
        Assert.Empty(plan.CalibratedQuantizers);
        Assert.Equal(expected is WeightAlgorithm.LocalHessian or WeightAlgorithm.Gptq, plan.NeedsCalibration);
    }

    [Fact]
    public void ShortSpellingsAndGptqSettingsLoad()
    {
        Assert.Equal(WeightAlgorithm.Gptq, RecipeFile.Load(Write("g.yaml", "algorithm: gptq\nquant_cfg:\n  - $import: configs/ptq/units/w4_nvfp4\n")).Algorithm.Weights);
        Assert.Equal(WeightAlgorithm.LocalHessian,
            RecipeFile.Load(Write("lh.json", """{"algorithm": "local_hessian", "quant_cfg": [{"$import": "configs/ptq/units/w4_nvfp4"}]}""")).Algorithm.Weights);
        var gptq = RecipeFile.Load(Write("g2.yaml", Recipe("    method: gptq\n    perc_damp: 0.05\n    block_size: 64", "configs/numerics/nvfp4"))).Algorithm;
        Assert.Equal(new QuantAlgorithm(WeightAlgorithm.Gptq) { PercDamp = 0.05, GptqBlockSize = 64 }, gptq);
        Assert.Equal("Gptq (perc_damp 0.05, block_size 64)", gptq.ToString());
        Assert.Equal(QuantAlgorithm.Max, RecipeFile.Load(Write("none.yaml", "quant_cfg:\n  - $import: configs/ptq/units/w4_nvfp4\n")).Algorithm);
    }

    [Fact]
    public void StaticNvfp4NumericsUnitIsBuiltIn()
    {
        var recipe = RecipeFile.Load(Write("static.yaml", Recipe("    method: mse\n    fp8_scale_sweep: true")));
        var weight = recipe.Entries.Single(e => e.Pattern == "*weight_quantizer");
        Assert.True(weight.Format!.IsNvfp4);
        Assert.Equal("static", weight.Format.BlockType);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen3_5_moe")]
    public void AlgorithmAppliesToNvfp4WeightsOnly(string family)
    {
        var model = _models[family];
        var plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST").WithAlgorithm(new QuantAlgorithm(WeightAlgorithm.LocalHessian)));
        Assert.Contains(plan.Modules, m => m.Decision == QuantDecision.Fp8);
        Assert.All(plan.Modules, m => Assert.Equal(m.HasNvfp4Weights ? WeightAlgorithm.LocalHessian : null, m.Algorithm));
        if (family != "llama") Assert.Contains(plan.Modules, m => m.Kind == ModelOptPS.Engine.Model.ModuleKind.FusedExperts && m.Algorithm == WeightAlgorithm.LocalHessian);
        Assert.True(plan.NeedsWeightCalibration);
        Assert.Contains("weights by LocalHessian", plan.Summary);
        var max = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4"));
        Assert.False(max.NeedsCalibration);
        Assert.DoesNotContain("weights by", max.Summary);
        // An FP8-only plan has no NVFP4 weights and so no weight algorithm, whatever the recipe says.
        var fp8 = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST").WithAlgorithm(new QuantAlgorithm(WeightAlgorithm.Gptq))
            .WithModulePatterns([], ["*mlp*", "*experts*", "lm_head"], QuantizerFormat.Nvfp4, weightOnly: true), allowEmpty: true);
        Assert.Null(fp8.WeightAlgorithm);
        Assert.False(fp8.NeedsWeightCalibration);
    }
}
