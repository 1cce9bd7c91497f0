using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>Recipe matching rules, recipe files, and the plan guards.</summary>
public class RecipeTests : IClassFixture<FamilyModels>, IDisposable
{
    private readonly FamilyModels _models;
    private readonly TempFolder _tmp = new();

    public RecipeTests(FamilyModels models) => _models = models;

    public void Dispose() => _tmp.Dispose();

    private static RecipeEntry Entry(string pattern, bool? enable = null, bool nvfp4 = false) =>
        new() { Position = 0, Pattern = pattern, Enable = enable, Format = nvfp4 ? QuantizerFormat.Nvfp4 : null, Source = "test" };

    [Theory]
    [InlineData("a.b.c", "a.*", true)]
    [InlineData("a.b.c", "*c", true)]
    [InlineData("a.b.c", "A.*", false)]
    [InlineData("a.b.c", "a.?.c", true)]
    [InlineData("a.b.c", "a.[bx].c", true)]
    [InlineData("a.b.c", "a.[!b].c", false)]
    [InlineData("mlp.gate_proj.weight_quantizer", "*mlp.gate.*", false)]
    [InlineData("mlp.gate.weight_quantizer", "*mlp.gate.*", true)]
    [InlineData("x.linear_attn.in_proj_ba.weight_quantizer", "*linear_attn.in_proj_b*", true)]
    [InlineData("a[1]", "a[[]1]", true)]
    public void FnmatchBehavesLikePython(string name, string pattern, bool expected) =>
        Assert.Equal(expected, Fnmatch.IsMatch(name, pattern));

    [Fact]
    public void SingularRecipeReachesFusedExperts()
    {
        // The seed bug: a recipe written with the singular name must reach gate_up_proj_weight_quantizers.N.
        var recipe = QuantRecipe.Build("singular", [
            Entry("*", enable: false),
            Entry("*mlp.experts*weight_quantizer", nvfp4: true),
            Entry("*mlp.experts*input_quantizer", nvfp4: true),
            Entry("mtp.*", enable: false),
        ]);
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], recipe);
        var fused = plan.Modules.Where(m => m.Kind == ModuleKind.FusedExperts && m.Section == ModelSection.Text).ToList();
        Assert.Equal(4, fused.Count);
        Assert.All(fused, f => Assert.Equal(QuantDecision.Nvfp4, f.Decision));
        Assert.Equal(4, plan.QuantizedCount);
        var unit = fused[0].ExpertUnits.Single(u => u.Expert == 5 && u.Projection == "gate_up_proj");
        Assert.Equal("*mlp.experts*weight_quantizer", unit.Weight.DecidedBy!.Pattern);
    }

    [Fact]
    public void LaterEntriesWin()
    {
        var recipe = QuantRecipe.Build("order", [
            Entry("*", enable: false),
            Entry("*weight_quantizer", nvfp4: true),
            Entry("*o_proj*", enable: false),
            Entry("*layers.1.self_attn.o_proj.weight_quantizer", enable: true),
        ]);
        var plan = QuantPlanner.Plan(_models["llama"], recipe);
        Assert.Equal(QuantDecision.Unquantized, plan.Modules.Single(m => m.Name == "model.layers.0.self_attn.o_proj").Decision);
        var q1 = plan.Modules.Single(m => m.Name == "model.layers.1.self_attn.o_proj");
        Assert.Equal(QuantDecision.W4A16Nvfp4, q1.Decision);
        Assert.Equal(4, q1.EntryPosition);
    }

    [Fact]
    public void YamlRecipeAndJsonTwinGiveTheSamePlan()
    {
        var yaml = _tmp.Combine("recipe.yaml");
        File.WriteAllText(yaml, """
            # A ModelOpt-style recipe: disable all, NVFP4 on experts and attention, keep layer 3's o_proj in bf16.
            algorithm: max
            quant_cfg:
              - quantizer_name: '*'
                enable: false
              - quantizer_name: '*mlp.experts*weight_quantizer'
                cfg:
                  num_bits: e2m1
                  block_sizes:
                    -1: 16
                    type: dynamic
                    scale_bits: e4m3
              - quantizer_name: '*mlp.experts*input_quantizer'
                cfg:
                  num_bits: [2, 1]
                  block_sizes: {-1: 16, type: dynamic, scale_bits: [4, 3]}
              - quantizer_name: '*self_attn*'
                cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}
              - quantizer_name: '*layers.3.self_attn.o_proj*'
                enable: false
              - quantizer_name: '*[kv]_bmm_quantizer'
                enable: false
              - quantizer_name: 'mtp.*'
                enable: false
            """);
        var json = _tmp.Combine("recipe.json");
        File.WriteAllText(json, """
            {"algorithm": "max", "quant_cfg": [
              {"quantizer_name": "*", "enable": false},
              {"quantizer_name": "*mlp.experts*weight_quantizer", "cfg": {"num_bits": "e2m1", "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": "e4m3"}}},
              {"quantizer_name": "*mlp.experts*input_quantizer", "cfg": {"num_bits": [2, 1], "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": [4, 3]}}},
              {"quantizer_name": "*self_attn*", "cfg": {"num_bits": "e2m1", "block_sizes": {"-1": 16, "type": "dynamic", "scale_bits": "e4m3"}}},
              {"quantizer_name": "*layers.3.self_attn.o_proj*", "enable": false},
              {"quantizer_name": "*[kv]_bmm_quantizer", "enable": false},
              {"quantizer_name": "mtp.*", "enable": false}
            ]}
            """);
        var model = _models["qwen3_5_moe"];
        var fromYaml = QuantPlanner.Plan(model, RecipeFile.Load(yaml));
        var fromJson = QuantPlanner.Plan(model, RecipeFile.Load(json));
        Assert.Equal(Describe(fromJson), Describe(fromYaml));
        Assert.Equal(4 + 3, fromYaml.QuantizedCount); // 4 fused containers + q, k, v of the full-attention layer
        Assert.Equal(QuantDecision.Unquantized, fromYaml.Modules.Single(m => m.Name == "model.language_model.layers.3.self_attn.o_proj").Decision);
        Assert.Equal(7, fromYaml.Recipe.Entries.Count);
        Assert.Equal(KvCacheMode.None, fromYaml.KvCache.Mode);
        Assert.Equal("file recipe.yaml", fromYaml.Recipe.Entries[0].Source);
    }

    private static string Describe(QuantPlan plan) => string.Join("\n",
        plan.Modules.Select(m => $"{m.Name} {m.Decision} {m.EntryPosition} {m.EntryPattern} " +
                                 string.Join(",", m.ExpertUnits.Select(u => u.Decision))));

    [Fact]
    public void LegacyMappingFormAndImportsOfBuiltInUnits()
    {
        var legacy = _tmp.Combine("w4a4_nvfp4_nvfp4.yml");
        File.WriteAllText(legacy, """
            quant_cfg:
              default:
                enable: false
              '*weight_quantizer':
                block_sizes: {-1: 16, type: dynamic, scale_bits: [4, 3]}
                num_bits: [2, 1]
                enable: true
              '*input_quantizer':
                block_sizes: {-1: 16, type: dynamic, scale_bits: [4, 3]}
                num_bits: [2, 1]
                enable: true
              '*lm_head*':
                enable: false
            """);
        var preset = _tmp.Combine("nvfp4_experts_only.yaml");
        File.WriteAllText(preset, """
            imports:
              base_disable_all: configs/ptq/units/base_disable_all
              default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers
              nvfp4: configs/numerics/nvfp4
            algorithm: max
            quant_cfg:
              - $import: base_disable_all
              - quantizer_name: '*mlp.experts*weight_quantizer'
                cfg:
                  $import: nvfp4
              - quantizer_name: '*mlp.experts*input_quantizer'
                cfg:
                  $import: nvfp4
              - $import: default_disabled_quantizers
            """);
        var model = _models["qwen3_moe"];
        var a = QuantPlanner.Plan(model, RecipeFile.Load(legacy));
        Assert.Equal(56, a.QuantizedCount); // routers stay unquantized even though *weight_quantizer enables them
        Assert.Contains(a.Warnings, w => w.Contains("is a router", StringComparison.Ordinal));
        var b = QuantPlanner.Plan(model, RecipeFile.Load(preset));
        Assert.Equal(48, b.QuantizedCount);
        Assert.Equal(Describe(QuantPlanner.Plan(model, Presets.Get("NVFP4_EXPERTS_ONLY"))).Split('\n').Select(l => l.Split(' ')[1]),
            Describe(b).Split('\n').Select(l => l.Split(' ')[1]));
    }

    [Fact]
    public void BadRecipeFilesHaveTheirOwnErrors()
    {
        var missing = Assert.Throws<ModelOptException>(() => RecipeFile.Load(_tmp.Combine("none.yaml")));
        Assert.Equal("RecipeFileNotFound", missing.ErrorId);
        var broken = _tmp.Combine("broken.yaml");
        File.WriteAllText(broken, "quant_cfg: [ {quantizer_name: '*'");
        Assert.Equal("RecipeInvalid", Assert.Throws<ModelOptException>(() => RecipeFile.Load(broken)).ErrorId);
        var noName = _tmp.Combine("noname.json");
        File.WriteAllText(noName, "{\"quant_cfg\": [{\"enable\": false}]}");
        Assert.Contains("quantizer_name", Assert.Throws<ModelOptException>(() => RecipeFile.Load(noName)).Message);
        var badImport = _tmp.Combine("import.yaml");
        File.WriteAllText(badImport, "quant_cfg:\n  - $import: configs/ptq/units/nowhere\n");
        Assert.Equal("RecipeImportNotFound", Assert.Throws<ModelOptException>(() => RecipeFile.Load(badImport)).ErrorId);
    }

    [Fact]
    public void FormatsModelOptPsCannotWriteAreRefusedWhereTheyApply()
    {
        var int8 = QuantRecipe.Build("int8", [
            Entry("*", enable: false),
            new RecipeEntry { Position = 0, Pattern = "*weight_quantizer", Format = new QuantizerFormat("8", null, null, null), Source = "test" },
        ]);
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], int8));
        Assert.Equal("UnsupportedQuantizerFormat", ex.ErrorId);
        Assert.Contains("num_bits 8", ex.Message);

        // FP8 per channel (axis 0) is ModelOpt's FP8_PC_PT, not the per-tensor FP8 ModelOptPS writes.
        var perChannel = QuantRecipe.Build("fp8pc", [
            Entry("*", enable: false),
            new RecipeEntry { Position = 0, Pattern = "*_quantizer", Format = QuantizerFormat.Fp8 with { Axis = 0 }, Source = "test" },
        ]);
        Assert.Equal("UnsupportedQuantizerFormat", Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], perChannel)).ErrorId);

        // FP8 weights with the input quantizer off would be an FP8 layer without input_scale: engines cannot load it.
        var weightOnlyFp8 = QuantRecipe.Build("fp8wo", [
            Entry("*", enable: false),
            new RecipeEntry { Position = 0, Pattern = "*weight_quantizer", Format = QuantizerFormat.Fp8, Source = "test" },
        ]);
        ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], weightOnlyFp8));
        Assert.Equal("Fp8WithoutInputQuantizer", ex.ErrorId);
        Assert.Contains("input_scale", ex.Message);

        // NVFP4 weights with FP8 inputs is ModelOpt's W4A8_NVFP4_FP8, which ModelOptPS does not export.
        var w4a8 = QuantRecipe.Build("w4a8", [
            Entry("*", enable: false),
            new RecipeEntry { Position = 0, Pattern = "*weight_quantizer", Format = QuantizerFormat.Nvfp4, Source = "test" },
            new RecipeEntry { Position = 0, Pattern = "*input_quantizer", Format = QuantizerFormat.Fp8, Source = "test" },
        ]);
        Assert.Contains("W4A8", Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], w4a8)).Message);
    }

    [Fact]
    public void GuardWarnsAboutSiblingsLeftUnquantized()
    {
        var recipe = Presets.Get("NVFP4_DEFAULT").WithModulePatterns([], ["*experts.3.*", "model.layers.1.self_attn.o_proj"], QuantizerFormat.Nvfp4, false);
        var plan = QuantPlanner.Plan(_models["qwen3_moe"], recipe);
        Assert.Contains(plan.Warnings, w => w.Contains("model.layers.0.mlp.experts.3.gate_proj", StringComparison.Ordinal)
                                           && w.Contains("model.layers.*.mlp.experts.*.gate_proj", StringComparison.Ordinal));
        Assert.Contains(plan.Warnings, w => w.Contains("model.layers.1.self_attn.o_proj", StringComparison.Ordinal) && w.Contains("-Exclude"));

        // The same rule inside one fused container.
        var fused = Presets.Get("NVFP4_DEFAULT").WithModulePatterns([], ["*experts.2.down_proj"], QuantizerFormat.Nvfp4, false);
        var fusedPlan = QuantPlanner.Plan(_models["qwen3_5_moe"], fused);
        var container = fusedPlan.Modules.Single(m => m.Name == "model.language_model.layers.0.mlp.experts");
        Assert.Equal(QuantDecision.Mixed, container.Decision);
        Assert.True(container.IsQuantized);
        Assert.Equal(QuantDecision.Unquantized, container.ExpertUnits.Single(u => u.Expert == 2 && u.Projection == "down_proj").Decision);
        Assert.Contains(fusedPlan.Warnings, w => w.Contains("down_proj[2]", StringComparison.Ordinal));
    }

    [Fact]
    public void GuardReportsInputsNotMultipleOf16AsUnquantizable()
    {
        var dims = new Dims { Hidden = 72, HeadDim = 18, Heads = 4, KvHeads = 2 };
        using var model = ModelImporter.Import(TinyCheckpoints.Write("llama", _tmp.Combine("odd"), dims));
        var plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT"));
        var q = plan.Modules.Single(m => m.Name == "model.layers.0.self_attn.q_proj");
        Assert.Equal(QuantDecision.Unquantizable, q.Decision);
        Assert.Contains("72 is not a multiple of 16", q.Reason);
        Assert.Equal(QuantDecision.Nvfp4, plan.Modules.Single(m => m.Name == "model.layers.0.mlp.down_proj").Decision); // in = 128
        Assert.Contains(plan.Warnings, w => w.Contains("model.layers.0.self_attn.q_proj [72, 72] cannot be NVFP4", StringComparison.Ordinal));
        Assert.Equal(12, plan.UnquantizableCount);
    }

    [Fact]
    public void GuardRefusesAnEmptyPlanUnlessAllowed()
    {
        var recipe = QuantRecipe.Build("typo", [Entry("*", enable: false), Entry("*wieght_quantizer", nvfp4: true)]);
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["mixtral"], recipe));
        Assert.Equal("PlanQuantizesNothing", ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidOperation, ex.Kind);
        var allowed = QuantPlanner.Plan(_models["mixtral"], recipe, allowEmpty: true);
        Assert.Contains(allowed.Warnings, w => w.Contains("'*wieght_quantizer'", StringComparison.Ordinal) && w.Contains("matched no quantizer"));
    }

    [Fact]
    public void IncludePatternsAddModulesAndWinOverTheRecipe()
    {
        var recipe = Presets.Get("NVFP4_MLP_ONLY").WithModulePatterns(["*self_attn.o_proj"], [], QuantizerFormat.Nvfp4, false);
        var plan = QuantPlanner.Plan(_models["llama"], recipe);
        Assert.Equal(8, plan.QuantizedCount);
        var o = plan.Modules.Single(m => m.Name == "model.layers.0.self_attn.o_proj");
        Assert.Equal(QuantDecision.Nvfp4, o.Decision);
        Assert.Equal(PatternTarget.Module, o.DecidedBy!.Target);
        Assert.Equal("-Include", o.DecidedBy.Source);
    }

    [Fact]
    public void IncludeOnAWeightOnlyRecipeAddsWeightOnlyModules()
    {
        var weightOnly = Presets.Get("W4A16_NVFP4");
        Assert.False(weightOnly.EnablesInputs);
        Assert.True(Presets.Get("NVFP4_MLP_ONLY").EnablesInputs);
        var recipe = weightOnly.WithModulePatterns(["lm_head"], [], QuantizerFormat.Nvfp4, weightOnly: !weightOnly.EnablesInputs);
        var plan = QuantPlanner.Plan(_models["llama"], recipe);
        Assert.Equal(QuantDecision.W4A16Nvfp4, plan.Modules.Single(m => m.Name == "lm_head").Decision);
        Assert.Equal("W4A16_NVFP4", plan.QuantAlgo);
        Assert.Contains("(weight quantizers)", plan.Modules.Single(m => m.Name == "lm_head").DecidedBy!.ToString());
    }

    [Fact]
    public void SiblingKeyReplacesLayerAndExpertIndices() =>
        Assert.Equal("model.layers.*.mlp.experts.*.up_proj", PlanGuards.SiblingKey("model.layers.12.mlp.experts.7.up_proj"));
}
