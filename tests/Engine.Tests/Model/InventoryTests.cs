using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Model;

/// <summary>Import of every generated family: architecture, counts per section and kind, and key shapes.</summary>
public class InventoryTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Import(string family, long maxShardBytes = 10_000_000_000) =>
        ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family), maxShardBytes: maxShardBytes));

    private static string Counts(HFModel model) => string.Join(" ",
        model.Modules.GroupBy(m => $"{m.Section}.{m.Kind}").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}={g.Count()}"));

    private static long[] ShapeOf(HFModel model, string module) => model.Modules.Single(m => m.Name == module).Shape;

    [Theory]
    [InlineData("llama", "LlamaForCausalLM", "Llama", 2, 0, "Text.Embedding=1 Text.Linear=15 Text.Norm=5")]
    [InlineData("qwen2", "Qwen2ForCausalLM", "Qwen2", 2, 0, "Text.Embedding=1 Text.Linear=14 Text.Norm=5")]
    [InlineData("qwen3", "Qwen3ForCausalLM", "Qwen3", 2, 0, "Text.Embedding=1 Text.Linear=14 Text.Norm=9")]
    [InlineData("qwen3_moe", "Qwen3MoeForCausalLM", "Qwen3Moe", 2, 8, "Text.Embedding=1 Text.Linear=57 Text.Norm=9 Text.Router=2")]
    [InlineData("mixtral", "MixtralForCausalLM", "Mixtral", 2, 4, "Text.Embedding=1 Text.Linear=33 Text.Norm=5 Text.Router=2")]
    [InlineData("qwen3_next", "Qwen3NextForCausalLM", "Qwen3Next", 4, 8,
        "Mtp.Linear=32 Mtp.Norm=7 Mtp.Router=2 Text.Conv=3 Text.Embedding=1 Text.Linear=122 Text.Norm=14 Text.Other=3 Text.Router=8")]
    [InlineData("qwen3_5_moe", "Qwen3_5MoeForConditionalGeneration", "Qwen3_5Moe", 4, 8,
        "Mtp.FusedExperts=1 Mtp.Linear=8 Mtp.Norm=7 Mtp.Router=2 Text.Conv=3 Text.Embedding=1 Text.FusedExperts=4 Text.Linear=32 Text.Norm=14 Text.Other=3 Text.Router=8 Vision.Conv=1 Vision.Embedding=1 Vision.Linear=6 Vision.Norm=3")]
    public void EachFamilyImportsWithExpectedModules(string family, string architecture, string spec, int layers, int experts, string counts)
    {
        using var model = Import(family);
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(spec, model.Family);
        Assert.True(model.IsKnownArchitecture);
        Assert.Equal(layers, model.LayerCount);
        Assert.Equal(experts, model.ExpertCount);
        Assert.Equal(counts, Counts(model));
        Assert.Equal(DType.BF16, model.SourceDType);
        Assert.Equal(model.Checkpoint.Tensors.Values.Sum(t => t.Info.ElementCount), model.ParameterCount);
        Assert.Equal(model.Modules.Sum(m => m.Parameters.Count), model.TensorCount);
        Assert.All(model.Checkpoint.Shards, s => Assert.False(s.IsMapped));
    }

    [Fact]
    public void DenseShapesAndBiases()
    {
        using var model = Import("qwen2");
        Assert.Equal([64L, 64], ShapeOf(model, "model.layers.0.self_attn.q_proj"));
        Assert.Equal([32L, 64], ShapeOf(model, "model.layers.1.self_attn.k_proj"));
        Assert.Equal([64L, 128], ShapeOf(model, "model.layers.0.mlp.down_proj"));
        var q = model.Modules.Single(m => m.Name == "model.layers.0.self_attn.q_proj");
        Assert.Equal(["bias", "weight"], q.Parameters.Keys.Order());
        Assert.Equal(64, q.InFeatures);
        Assert.Equal(0, q.Layer);
        Assert.Empty(model.Warnings);
        Assert.DoesNotContain(model.Modules, m => m.Name == "lm_head"); // tied
    }

    [Fact]
    public void PerExpertModulesCarryLayerExpertAndRole()
    {
        using var model = Import("mixtral");
        var w1 = model.Modules.Single(m => m.Name == "model.layers.1.block_sparse_moe.experts.3.w1");
        Assert.Equal((1, 3, "gate_proj"), (w1.Layer!.Value, w1.Expert!.Value, w1.Role));
        Assert.Equal("down_proj", model.Modules.Single(m => m.Name == "model.layers.0.block_sparse_moe.experts.0.w2").Role);
        Assert.Equal("up_proj", model.Modules.Single(m => m.Name == "model.layers.0.block_sparse_moe.experts.0.w3").Role);
        Assert.Equal([4L, 64], ShapeOf(model, "model.layers.0.block_sparse_moe.gate"));
        Assert.Equal(ModuleKind.Router, model.Modules.Single(m => m.Name == "model.layers.0.block_sparse_moe.gate").Kind);
    }

    [Fact]
    public void FusedExpertQwen35MoeWithNullArchitectures()
    {
        using var model = Import("qwen3_5_moe", maxShardBytes: 200_000);
        Assert.Null(model.DeclaredArchitecture);
        Assert.Contains(model.Warnings, w => w.Contains("architectures is null", StringComparison.Ordinal));
        Assert.True(model.ShardCount > 1);
        var experts = model.Modules.Single(m => m.Name == "model.language_model.layers.2.mlp.experts");
        Assert.Equal(ModuleKind.FusedExperts, experts.Kind);
        Assert.Equal(8, experts.ExpertCount);
        Assert.Equal([8L, 64, 64], experts.Parameters["gate_up_proj"].Shape);
        Assert.Equal([8L, 64, 32], experts.Parameters["down_proj"].Shape);
        Assert.Equal([128L, 64], ShapeOf(model, "model.language_model.layers.3.self_attn.q_proj")); // query + gate
        Assert.Equal([128L, 64], ShapeOf(model, "model.language_model.layers.0.linear_attn.in_proj_qkv"));
        Assert.Equal([128L, 1, 4], ShapeOf(model, "model.language_model.layers.0.linear_attn.conv1d"));
        Assert.Equal(ModuleKind.Router, model.Modules.Single(m => m.Name == "model.language_model.layers.0.mlp.shared_expert_gate").Kind);
        Assert.Equal(ModuleKind.Other, model.Modules.Single(m => m.Name == "model.language_model.layers.0.linear_attn").Kind);
        Assert.Equal(ModelSection.Vision, model.Modules.Single(m => m.Name == "model.visual.blocks.0.attn.qkv").Section);
        Assert.Equal(ModuleKind.FusedExperts, model.Modules.Single(m => m.Name == "mtp.layers.0.mlp.experts").Kind);
        Assert.Equal(0.25, model.Config.PartialRotaryFactor);
        Assert.Equal(10_000_000.0, model.Config.RopeTheta);
        Assert.Equal(64, model.HiddenSize);
    }

    [Fact]
    public void RopeThetaReadFromEitherLayout()
    {
        using var legacy = Import("llama");
        using var v5 = Import("qwen3");
        Assert.Equal(500000.0, legacy.Config.RopeTheta);
        Assert.Equal(1000000.0, v5.Config.RopeTheta);
    }

    [Fact]
    public void UnknownArchitectureStillImportsWithGenericDiscovery()
    {
        var recipe = TinyCheckpoints.Create("llama");
        recipe.Config["architectures"] = new System.Text.Json.Nodes.JsonArray("FancyNewForCausalLM");
        recipe.Config["model_type"] = "fancy_new";
        using var model = ModelImporter.Import(recipe.Write(_tmp.Combine("fancy")));
        Assert.False(model.IsKnownArchitecture);
        Assert.Equal("Unknown", model.Family);
        Assert.Equal("FancyNewForCausalLM", model.Architecture);
        Assert.Contains(model.Warnings, w => w.Contains("not a known family", StringComparison.Ordinal));
        Assert.Equal(15, model.Modules.Count(m => m.Kind == ModuleKind.Linear));
    }

    [Fact]
    public void LayerCountMismatchIsReported()
    {
        var recipe = TinyCheckpoints.Create("llama");
        recipe.Config["num_hidden_layers"] = 3;
        using var model = ModelImporter.Import(recipe.Write(_tmp.Combine("mismatch")));
        Assert.Contains(model.Warnings, w => w.Contains("num_hidden_layers = 3", StringComparison.Ordinal));
    }

    [Fact]
    public void MultiGigabyteImportReadsOnlyHeaders()
    {
        // A sparse 4 GB Qwen3-MoE: real headers, data never written. Import must not map or read it.
        var dims = new Dims { Hidden = 2048, Layers = 12, Heads = 16, KvHeads = 4, HeadDim = 128, Experts = 32, ExpertIntermediate = 768, Vocab = 32000 };
        var folder = TinyCheckpoints.Create("qwen3_moe", dims).WriteSparse(_tmp.Combine("big"), maxShardBytes: 2_000_000_000);
        using var model = ModelImporter.Import(folder);
        Assert.True(model.SizeOnDisk > 3_000_000_000L, $"size {model.SizeOnDisk}");
        Assert.True(model.ShardCount >= 2);
        Assert.Equal(12 * (4 + 32 * 3) + 1, model.Modules.Count(m => m.Kind == ModuleKind.Linear));
        Assert.All(model.Checkpoint.Shards, s => Assert.False(s.IsMapped));
    }
}
