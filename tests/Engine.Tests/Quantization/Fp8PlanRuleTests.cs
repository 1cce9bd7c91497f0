using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>The format rules of a plan with FP8: what combines, what is refused, and which algorithm the plan declares.</summary>
public class Fp8PlanRuleTests : IClassFixture<FamilyModels>, IDisposable
{
    private readonly FamilyModels _models;
    private readonly TempFolder _tmp = new();

    public Fp8PlanRuleTests(FamilyModels models) => _models = models;

    public void Dispose() => _tmp.Dispose();

    private static RecipeEntry Set(string pattern, QuantizerFormat? format, bool? enable = null) =>
        new() { Position = 0, Pattern = pattern, Format = format, Enable = enable, Source = "test" };

    private static QuantRecipe Recipe(params RecipeEntry[] entries) =>
        QuantRecipe.Build("test", entries.Prepend(Presets.DisableAll("test")).Concat(Presets.DefaultDisabled()));

    private ModelOptException Refused(string family, QuantRecipe recipe) =>
        Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models[family], recipe));

    [Theory]
    [InlineData("llama", "*self_attn*weight_quantizer", "model.layers.0.self_attn.k_proj")]
    [InlineData("qwen3_5_moe", "*.experts.*weight_quantizer", "model.language_model.layers.0.mlp.experts")]
    public void Fp8WeightsNeedFp8Inputs(string family, string pattern, string module)
    {
        var ex = Refused(family, Recipe(Set(pattern, QuantizerFormat.Fp8)));
        Assert.Equal(QuantizationErrorIds.Fp8WithoutInputQuantizer, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains(module, ex.Message);
        Assert.Contains("input_scale", ex.Message);
    }

    [Fact]
    public void W4A8IsRefused()
    {
        var ex = Refused("llama", Recipe(Set("*weight_quantizer", QuantizerFormat.Nvfp4), Set("*input_quantizer", QuantizerFormat.Fp8)));
        Assert.Equal(QuantizationErrorIds.UnsupportedQuantizerFormat, ex.ErrorId);
        Assert.Contains("W4A8", ex.Message);
        // FP8 weights with NVFP4 inputs are no format either.
        ex = Refused("llama", Recipe(Set("*weight_quantizer", QuantizerFormat.Fp8), Set("*input_quantizer", QuantizerFormat.Nvfp4)));
        Assert.Equal(QuantizationErrorIds.UnsupportedQuantizerFormat, ex.ErrorId);
        Assert.Contains("FP8 per tensor too", ex.Message);
    }

    [Fact]
    public void OneFusedContainerTakesOneFormat()
    {
        // gate_up FP8 (W8A8), down NVFP4 (W4A4): one quantized_layers entry cannot say both.
        var byProjection = Recipe(
            Set("*experts.gate_up_proj*quantizer*", QuantizerFormat.Fp8),
            Set("*experts.down_proj*quantizer*", QuantizerFormat.Nvfp4));
        var ex = Refused("qwen3_5_moe", byProjection);
        Assert.Equal(QuantizationErrorIds.FusedExpertsFormatsMixed, ex.ErrorId);
        Assert.Contains("model.language_model.layers.0.mlp.experts", ex.Message);
        Assert.Contains("NVFP4", ex.Message);
        Assert.Contains("FP8", ex.Message);

        // gate_up weight-only NVFP4, down FP8. (Within one projection the experts share an input quantizer, so FP8 and NVFP4
        // experts there are refused earlier, as W4A8 or FP8 without FP8 inputs.)
        var weightOnlyAndFp8 = Recipe(
            Set("*experts.gate_up_proj_weight_quantizer", QuantizerFormat.Nvfp4),
            Set("*experts.down_proj*quantizer*", QuantizerFormat.Fp8));
        ex = Refused("qwen3_5_moe", weightOnlyAndFp8);
        Assert.Equal(QuantizationErrorIds.FusedExpertsFormatsMixed, ex.ErrorId);
        Assert.Contains("W4A16_NVFP4 and FP8", ex.Message);
    }

    [Fact]
    public void FusedContainerInFp8IsOneFormat()
    {
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], Recipe(Set("*.experts.*weight_quantizer", QuantizerFormat.Fp8), Set("*.experts.*input_quantizer", QuantizerFormat.Fp8)));
        var experts = plan.Modules.Where(m => m.Kind == ModuleKind.FusedExperts && m.Section == ModelSection.Text).ToList();
        Assert.Equal(4, experts.Count);
        Assert.All(experts, e => Assert.Equal(QuantDecision.Fp8, e.Decision));
        Assert.Equal("FP8", plan.QuantAlgo);
        Assert.Equal(8, plan.CalibratedQuantizers.Count); // gate_up and down inputs of 4 containers
    }

    [Fact]
    public void Fp8AndNvfp4ShardsOfOneMergedLayerAreRefused()
    {
        var recipe = Recipe(
            Set("*self_attn*weight_quantizer", QuantizerFormat.Fp8), Set("*self_attn*input_quantizer", QuantizerFormat.Fp8),
            Set("*self_attn.k_proj.*_quantizer", QuantizerFormat.Nvfp4));
        var ex = Refused("qwen3", recipe);
        Assert.Equal(QuantizationErrorIds.MergedLayerPartiallyQuantized, ex.ErrorId);
        Assert.Contains("model.layers.0.self_attn.qkv_proj", ex.Message);
        Assert.Contains("q_proj FP8", ex.Message);
        Assert.Contains("k_proj NVFP4", ex.Message);

        // Linear attention: in_proj_qkv FP8 with in_proj_z left out.
        var qkvOnly = Recipe(Set("*linear_attn.in_proj_qkv*_quantizer", QuantizerFormat.Fp8));
        ex = Refused("qwen3_5_moe", qkvOnly);
        Assert.Equal(QuantizationErrorIds.MergedLayerPartiallyQuantized, ex.ErrorId);
        Assert.Contains("in_proj_qkvz", ex.Message);
    }

    [Fact]
    public void Fp8HasNoBlockSizeLimit()
    {
        // Hidden 72: every attention projection's input is not a multiple of 16, which NVFP4 cannot hold and FP8 can.
        var dims = new Dims { Hidden = 72, HeadDim = 18, Heads = 4, KvHeads = 2 };
        using var model = ModelImporter.Import(TinyCheckpoints.Write("llama", _tmp.Combine("odd"), dims));
        var plan = QuantPlanner.Plan(model, Recipe(Set("*weight_quantizer", QuantizerFormat.Fp8), Set("*input_quantizer", QuantizerFormat.Fp8)));
        Assert.Equal(0, plan.UnquantizableCount);
        Assert.Equal(QuantDecision.Fp8, plan.Modules.Single(m => m.Name == "model.layers.0.self_attn.q_proj").Decision);
        Assert.Equal(14, plan.QuantizedCount);
        Assert.Equal("FP8", plan.QuantAlgo);
        Assert.Empty(plan.Warnings);
    }

    [Fact]
    public void SeveralFormatsMakeMixedPrecision()
    {
        // NVFP4 W4A4 everywhere but lm_head, which is weight-only: two formats.
        var plan = QuantPlanner.Plan(_models["llama"], Presets.Get("NVFP4_DEFAULT").WithModulePatterns(["lm_head"], [], QuantizerFormat.Nvfp4, weightOnly: true));
        Assert.Equal(["NVFP4", "W4A16_NVFP4"], plan.Formats);
        Assert.Equal("MIXED_PRECISION", plan.QuantAlgo);
        Assert.Contains("MIXED_PRECISION", plan.Summary);
    }

    [Fact]
    public void BlockedFp8IsNotPerTensor()
    {
        // ModelOpt's 2-D blockwise FP8 (block_sizes on the last two axes) and per-channel FP8 are other formats.
        var path = _tmp.Combine("blocked.yaml");
        File.WriteAllText(path, """
            quant_cfg:
              - quantizer_name: '*'
                enable: false
              - quantizer_name: '*weight_quantizer'
                cfg: {num_bits: e4m3, block_sizes: {-2: 128}}
              - quantizer_name: '*input_quantizer'
                cfg: {num_bits: e4m3, axis: null}
            """);
        var recipe = RecipeFile.Load(path);
        var weightFormat = recipe.Entries[1].Format!;
        Assert.False(weightFormat.IsFp8PerTensor);
        Assert.Contains("blocks -2: 128", weightFormat.ToString());
        Assert.True(recipe.Entries[2].Format!.IsFp8PerTensor);
        var ex = Refused("llama", recipe);
        Assert.Equal(QuantizationErrorIds.UnsupportedQuantizerFormat, ex.ErrorId);
        Assert.Contains("blocks -2: 128", ex.Message);
    }
}
