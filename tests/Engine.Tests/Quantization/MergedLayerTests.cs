using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>
/// A recipe that decides the shards of a consumer's merged layer (vLLM packed_modules_mapping) differently is refused
/// by the planner, naming the merged layer, its shards and the fix; deciding them alike passes.
/// </summary>
public class MergedLayerTests : IClassFixture<FamilyModels>
{
    private readonly FamilyModels _models;

    public MergedLayerTests(FamilyModels models) => _models = models;

    private ModelOptException Refused(string family, QuantRecipe recipe)
    {
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models[family], recipe));
        Assert.Equal(QuantizationErrorIds.MergedLayerPartiallyQuantized, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidOperation, ex.Kind);
        Assert.Equal(_models[family].Path, ex.Path);
        return ex;
    }

    private static QuantRecipe Default(string[] include, string[] exclude) =>
        Presets.Get("NVFP4_DEFAULT").WithModulePatterns(include, exclude, QuantizerFormat.Nvfp4, weightOnly: false);

    [Theory]
    // family, -Include, -Exclude, merged layer named, shard patterns named in the fix
    [InlineData("qwen3_5_moe", "", "*linear_attn.in_proj_z", "model.language_model.layers.0.linear_attn.in_proj_qkvz",
        "'model.language_model.layers.*.linear_attn.in_proj_qkv', 'model.language_model.layers.*.linear_attn.in_proj_z'")]
    [InlineData("qwen3_5_moe", "*linear_attn.in_proj_b", "", "model.language_model.layers.0.linear_attn.in_proj_ba",
        "'model.language_model.layers.*.linear_attn.in_proj_b', 'model.language_model.layers.*.linear_attn.in_proj_a'")]
    [InlineData("llama", "", "model.layers.1.self_attn.v_proj", "model.layers.1.self_attn.qkv_proj",
        "'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.k_proj', 'model.layers.1.self_attn.v_proj'")]
    [InlineData("qwen3", "", "*mlp.up_proj", "model.layers.0.mlp.gate_up_proj", "'model.layers.*.mlp.gate_proj', 'model.layers.*.mlp.up_proj'")]
    [InlineData("qwen3_next", "", "*shared_expert.gate_proj", "model.layers.0.mlp.shared_expert.gate_up_proj",
        "'model.layers.*.mlp.shared_expert.gate_proj', 'model.layers.*.mlp.shared_expert.up_proj'")]
    [InlineData("qwen3_moe", "", "*experts.3.up_proj", "model.layers.0.mlp.experts.3.w13",
        "'model.layers.*.mlp.experts.*.gate_proj', 'model.layers.*.mlp.experts.*.up_proj'")]
    [InlineData("mixtral", "", "*experts.1.w3", "model.layers.0.block_sparse_moe.experts.1.w13",
        "'model.layers.*.block_sparse_moe.experts.*.w1', 'model.layers.*.block_sparse_moe.experts.*.w3'")]
    public void PartlyQuantizedMergedLayerIsRefusedWithTheFix(string family, string include, string exclude, string merged, string patterns)
    {
        var ex = Refused(family, Default(include.Length > 0 ? [include] : [], exclude.Length > 0 ? [exclude] : []));
        Assert.Contains($"merged layer {merged} differently", ex.Message);
        Assert.Contains("unquantized", ex.Message);
        Assert.Contains("NVFP4", ex.Message);
        Assert.Contains($"-Exclude {patterns}", ex.Message);
        Assert.Contains($"-Include {patterns}", ex.Message);
    }

    [Fact]
    public void ShardsInDifferentFormatsAreRefused()
    {
        // Inputs quantized for q_proj only: q is W4A4, k and v weight-only.
        var recipe = Presets.Get("W4A16_NVFP4").WithModulePatterns(["*.self_attn.q_proj"], [], QuantizerFormat.Nvfp4, weightOnly: false);
        var ex = Refused("qwen2", recipe);
        Assert.Contains("model.layers.0.self_attn.qkv_proj", ex.Message);
        Assert.Contains("q_proj NVFP4", ex.Message);
        Assert.Contains("k_proj W4A16_NVFP4", ex.Message);
        Assert.Contains("1 more: model.layers.1.self_attn.qkv_proj", ex.Message);
    }

    [Theory]
    // family, -Include, -Exclude (comma-separated patterns)
    [InlineData("qwen3_5_moe", "*linear_attn.in_proj_b,*linear_attn.in_proj_a", "")]
    [InlineData("qwen3_5_moe", "", "*linear_attn.in_proj_qkv,*linear_attn.in_proj_z")]
    [InlineData("qwen3_next", "*linear_attn.in_proj_ba", "")]
    [InlineData("llama", "", "model.layers.1.self_attn.[qkv]_proj")]
    [InlineData("mixtral", "", "*experts.1.*")]
    public void ShardsDecidedAlikePass(string family, string include, string exclude)
    {
        static string[] Split(string patterns) => patterns.Split(',', StringSplitOptions.RemoveEmptyEntries);
        var plan = QuantPlanner.Plan(_models[family], Default(Split(include), Split(exclude)));
        var byMerged = plan.Modules.Where(m => MergedLayers.Of(m.Module) is not null).GroupBy(m => MergedLayers.Of(m.Module)!).ToList();
        Assert.NotEmpty(byMerged);
        Assert.All(byMerged, g => Assert.Single(g.Select(m => m.Decision).Distinct()));
    }

    [Fact]
    public void MergedLayersAreVllmsPackedModules()
    {
        var model = _models["qwen3_5_moe"];
        string Of(string name) => MergedLayers.Of(model.Modules.Single(m => m.Name == name)) ?? "(none)";
        const string l = "model.language_model.layers.0.";
        Assert.Equal(l + "linear_attn.in_proj_qkvz", Of(l + "linear_attn.in_proj_z"));
        Assert.Equal(l + "linear_attn.in_proj_ba", Of(l + "linear_attn.in_proj_a"));
        Assert.Equal(l + "mlp.shared_expert.gate_up_proj", Of(l + "mlp.shared_expert.up_proj"));
        Assert.Equal("(none)", Of(l + "linear_attn.out_proj"));
        Assert.Equal("(none)", Of(l + "mlp.gate")); // the router
        Assert.Equal("model.language_model.layers.3.self_attn.qkv_proj", Of("model.language_model.layers.3.self_attn.k_proj"));
        Assert.Equal("model.layers.0.block_sparse_moe.experts.2.w13",
            MergedLayers.Of(_models["mixtral"].Modules.Single(m => m.Name == "model.layers.0.block_sparse_moe.experts.2.w1")));
    }
}
