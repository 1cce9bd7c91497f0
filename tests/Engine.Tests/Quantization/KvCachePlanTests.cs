using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Tests.Quantization;

/// <summary>The KV cache part of a plan: -KvCache, what recipes may set, the guards, and what calibration measures.</summary>
public class KvCachePlanTests : IClassFixture<FamilyModels>
{
    private const string Mixed = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";

    private readonly FamilyModels _models;

    public KvCachePlanTests(FamilyModels models) => _models = models;

    private static RecipeEntry Kv(string pattern, QuantizerFormat? format, bool? enable = null) =>
        new() { Position = 0, Pattern = pattern, Format = format, Enable = enable, Source = "test" };

    /// <summary>NVFP4_DEFAULT (which leaves the KV cache alone) followed by <paramref name="kv"/>.</summary>
    private static QuantRecipe DefaultWith(params RecipeEntry[] kv) => QuantRecipe.Build("kv", Presets.Get("NVFP4_DEFAULT").Entries.Concat(kv));

    public static TheoryData<string, KvCacheMode> FamiliesAndModes()
    {
        var data = new TheoryData<string, KvCacheMode>();
        foreach (var family in FamilyModels.All)
            foreach (var mode in Enum.GetValues<KvCacheMode>())
                data.Add(family, mode);
        return data;
    }

    [Theory]
    [MemberData(nameof(FamiliesAndModes))]
    public void KvCacheParameterSetsEveryAttentionLayer(string family, KvCacheMode mode)
    {
        var model = _models[family];
        var recipe = Presets.Get("NVFP4_DEFAULT").WithKvCache(mode);
        Assert.Equal(Presets.KvCachePattern, recipe.Entries[^1].Pattern);
        Assert.Equal("-KvCache", recipe.Entries[^1].Source);
        var plan = QuantPlanner.Plan(model, recipe);
        Assert.Equal(mode, plan.KvCache.Mode);
        Assert.Equal(mode == KvCacheMode.None ? null : "FP8", plan.KvCache.QuantAlgo);
        Assert.Empty(plan.Warnings);
        Assert.Equal("NVFP4", plan.QuantAlgo); // the KV cache is not a layer format

        // Softmax-attention blocks of the language model only: not linear attention, not MTP, not the vision tower.
        var expected = model.Modules.Where(m => m.Section == ModelSection.Text && m.Name.EndsWith(".self_attn.k_proj", StringComparison.Ordinal))
            .Select(m => m.Name[..^".k_proj".Length]).ToList();
        Assert.Equal(expected, plan.KvCache.Layers.Select(l => l.Attention));
        Assert.All(plan.KvCache.Layers, l =>
        {
            Assert.Equal(mode, l.Mode);
            Assert.Equal($"{l.Attention}.k_bmm_quantizer", l.Key.Name);
            Assert.Equal($"{l.Attention}.v_bmm_quantizer", l.Value.Name);
            Assert.Equal($"{l.Attention}.k_proj.k_scale", l.KeyScaleName);
            Assert.Equal($"{l.Attention}.v_proj.v_scale", l.ValueScaleName);
        });
        Assert.Equal(mode == KvCacheMode.None ? 0 : expected.Count, plan.KvCache.QuantizedLayers.Count());

        // Calibration measures the KV quantizers in scaled mode only, besides the NVFP4 inputs.
        var kvCalibrated = plan.CalibratedQuantizers.Where(q => q.EndsWith("_bmm_quantizer", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(mode == KvCacheMode.Fp8Scaled ? expected.SelectMany(a => new[] { a + ".k_bmm_quantizer", a + ".v_bmm_quantizer" }).Order(StringComparer.Ordinal) : [],
            kvCalibrated);
        if (mode == KvCacheMode.None) Assert.DoesNotContain("KV cache", plan.Summary);
        else Assert.Contains($"KV cache FP8 {(mode == KvCacheMode.Fp8Cast ? "(cast, no scales)" : "with k/v scales")} in {expected.Count} attention layer(s)", plan.Summary);
    }

    [Theory]
    [InlineData(KvCacheMode.None, null)]
    [InlineData(KvCacheMode.Fp8Scaled, "FP8")]
    [InlineData(KvCacheMode.Fp8Cast, "FP8")]
    public void KvCacheParameterOverridesThePresetsKvUnit(KvCacheMode mode, string? algo)
    {
        var plan = QuantPlanner.Plan(_models["qwen3_5_moe"], Presets.Get(Mixed).WithKvCache(mode));
        Assert.Equal(mode, plan.KvCache.Mode);
        Assert.Equal(algo, plan.KvCache.QuantAlgo);
        Assert.Equal(mode == KvCacheMode.Fp8Scaled,
            plan.CalibratedQuantizers.Contains("model.language_model.layers.3.self_attn.k_bmm_quantizer"));
        Assert.Equal("MIXED_PRECISION", plan.QuantAlgo);
        Assert.Contains(mode == KvCacheMode.None ? "unquantized" : "FP8", plan.KvCache.ToString());
    }

    [Fact]
    public void Nvfp4KvCacheIsRefused()
    {
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], DefaultWith(Kv(Presets.KvCachePattern, QuantizerFormat.Nvfp4))));
        Assert.Equal(QuantizationErrorIds.UnsupportedKvCacheFormat, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("model.layers.0.self_attn.k_bmm_quantizer", ex.Message);
        Assert.Contains("NVFP4", ex.Message);

        // A broad attention pattern reaches the KV quantizers too, and the message says how to keep them out.
        var broad = QuantRecipe.Build("broad", [Presets.DisableAll("test"), Kv("*self_attn*", QuantizerFormat.Nvfp4)]);
        ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], broad));
        Assert.Equal(QuantizationErrorIds.UnsupportedKvCacheFormat, ex.ErrorId);
        Assert.Contains($"'{Presets.KvCachePattern}' disabled", ex.Message);
        Assert.Equal(KvCacheMode.None, QuantPlanner.Plan(_models["llama"], broad.WithKvCache(KvCacheMode.None)).KvCache.Mode);
    }

    [Fact]
    public void KvEnabledWithoutFormatIsRefused()
    {
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], DefaultWith(Kv(Presets.KvCachePattern, null, enable: true))));
        Assert.Equal(QuantizationErrorIds.QuantizerWithoutFormat, ex.ErrorId);
        Assert.Contains("e4m3", ex.Message);
    }

    [Fact]
    public void CastAndScaledTogetherAreRefused()
    {
        // Layer 0 cast, layer 1 scaled.
        var byLayer = DefaultWith(Kv("model.layers.0.self_attn.[kv]_bmm_quantizer", QuantizerFormat.Fp8Cast),
                                  Kv("model.layers.1.self_attn.[kv]_bmm_quantizer", QuantizerFormat.Fp8));
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], byLayer));
        Assert.Equal(QuantizationErrorIds.KvCacheModesMixed, ex.ErrorId);
        Assert.Contains("model.layers.1.self_attn.k_bmm_quantizer", ex.Message);

        // Keys cast, values scaled, in every layer.
        var byRole = DefaultWith(Kv("*k_bmm_quantizer", QuantizerFormat.Fp8Cast), Kv("*v_bmm_quantizer", QuantizerFormat.Fp8));
        Assert.Equal(QuantizationErrorIds.KvCacheModesMixed, Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], byRole)).ErrorId);
    }

    [Fact]
    public void PartialKvCacheIsAWarning()
    {
        var keysOnly = QuantPlanner.Plan(_models["llama"], DefaultWith(Kv("*k_bmm_quantizer", QuantizerFormat.Fp8Cast)));
        Assert.Equal(KvCacheMode.Fp8Cast, keysOnly.KvCache.Mode);
        Assert.Contains(keysOnly.Warnings, w => w.Contains("keys or values only", StringComparison.Ordinal) && w.Contains("model.layers.0.self_attn"));

        var oneLayer = QuantPlanner.Plan(_models["llama"], DefaultWith(Kv("model.layers.1.*[kv]_bmm_quantizer", QuantizerFormat.Fp8)));
        Assert.Equal(KvCacheMode.Fp8Scaled, oneLayer.KvCache.Mode);
        Assert.Equal(KvCacheMode.None, oneLayer.KvCache.Layers[0].Mode);
        Assert.Contains(oneLayer.Warnings, w => w.Contains("KV cache of 1 of 2 attention layer(s) unquantized", StringComparison.Ordinal)
                                               && w.Contains("model.layers.0.self_attn"));
        // Only the enabled layer is calibrated.
        Assert.Equal(["model.layers.1.self_attn.k_bmm_quantizer", "model.layers.1.self_attn.v_bmm_quantizer"],
            oneLayer.CalibratedQuantizers.Where(q => q.Contains("bmm", StringComparison.Ordinal)));
    }

    [Fact]
    public void ModulePatternsNeverTouchTheKvCache()
    {
        var model = _models["qwen3_5_moe"];
        // -Exclude of the whole attention block keeps its KV cache as the recipe says.
        var excluded = QuantPlanner.Plan(model, Presets.Get(Mixed).WithModulePatterns([], ["*self_attn*"], QuantizerFormat.Nvfp4, weightOnly: true));
        Assert.Equal(QuantDecision.Unquantized, excluded.Modules.Single(m => m.Name == "model.language_model.layers.3.self_attn.q_proj").Decision);
        Assert.Equal(KvCacheMode.Fp8Cast, excluded.KvCache.Mode);
        Assert.Equal(KvCacheMode.Fp8Cast, Assert.Single(excluded.KvCache.Layers).Mode);

        // -Include '*' (W4A4) does not reach the KV quantizers (else they would be NVFP4, which is refused).
        var included = QuantPlanner.Plan(model, Presets.Get("NVFP4_MLP_ONLY").WithModulePatterns(["*"], [], QuantizerFormat.Nvfp4, weightOnly: false));
        Assert.Equal(KvCacheMode.None, included.KvCache.Mode);
        var layer = Assert.Single(included.KvCache.Layers);
        Assert.False(layer.Enabled);
        Assert.Equal(PatternTarget.Quantizer, layer.Key.DecidedBy!.Target);

        // -Exclude '*' leaves the cast KV cache alone (and the plan quantizes no module).
        var nothing = QuantPlanner.Plan(model, Presets.Get(Mixed).WithModulePatterns([], ["*"], QuantizerFormat.Nvfp4, weightOnly: true), allowEmpty: true);
        Assert.Equal(0, nothing.QuantizedCount);
        Assert.Equal(KvCacheMode.Fp8Cast, nothing.KvCache.Mode);
    }

    [Fact]
    public void PinnedAmaxIsNotCalibrated()
    {
        // Scaled KV cache with constant_amax: the scales are written (amax 8 / 448) but never measured.
        var pinned = QuantPlanner.Plan(_models["llama"], DefaultWith(Kv(Presets.KvCachePattern, QuantizerFormat.Fp8 with { ConstantAmax = 8f })));
        Assert.Equal(KvCacheMode.Fp8Scaled, pinned.KvCache.Mode);
        Assert.All(pinned.KvCache.Layers, l => Assert.Equal(8f, l.Key.Format!.PinnedAmax));
        Assert.DoesNotContain(pinned.CalibratedQuantizers, q => q.Contains("bmm", StringComparison.Ordinal));
        Assert.Empty(pinned.KvCache.CalibratedQuantizers);

        // FP8 inputs pinned with constant_amax (amax 448, input_scale 1): only the unpinned ones are calibrated.
        var recipe = QuantRecipe.Build("fp8", [
            Presets.DisableAll("test"),
            Kv("*weight_quantizer", QuantizerFormat.Fp8),
            Kv("*input_quantizer", QuantizerFormat.Fp8),
            Kv("*mlp*input_quantizer", QuantizerFormat.Fp8 with { ConstantAmax = 448f }),
            Kv("*lm_head*", null, enable: false),
        ]);
        var plan = QuantPlanner.Plan(_models["llama"], recipe);
        Assert.Equal("FP8", plan.QuantAlgo);
        Assert.Equal(448f, plan.Modules.Single(m => m.Name == "model.layers.0.mlp.up_proj").Quantizers.Single(q => q.Quantizer.Role == QuantizerRole.Input).Format!.PinnedAmax);
        var expected = plan.Modules.Where(m => m.Decision == QuantDecision.Fp8 && !m.Name.Contains(".mlp.", StringComparison.Ordinal))
            .Select(m => m.Name + ".input_quantizer").ToList();
        Assert.Equal(8, expected.Count); // q, k, v, o of 2 layers
        Assert.Equal(expected, plan.CalibratedQuantizers);
    }

    [Fact]
    public void PinningOutsideInputsAndTheKvCacheIsRefused()
    {
        // use_constant_amax on an input quantizer: ModelOpt's export writes no input_scale for it.
        var castInputs = QuantRecipe.Build("cast-inputs", [
            Presets.DisableAll("test"), Kv("*weight_quantizer", QuantizerFormat.Fp8), Kv("*input_quantizer", QuantizerFormat.Fp8Cast),
        ]);
        var ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], castInputs));
        Assert.Equal(QuantizationErrorIds.UnsupportedQuantizerFormat, ex.ErrorId);
        Assert.Contains("input_quantizer", ex.Message);
        Assert.Contains("use_constant_amax is for KV-cache quantizers", ex.Message);

        // A pinned weight amax: the export scales every weight by its own max |w|.
        var pinnedWeights = QuantRecipe.Build("pinned-weights", [
            Presets.DisableAll("test"), Kv("*weight_quantizer", QuantizerFormat.Nvfp4 with { ConstantAmax = 2f }),
        ]);
        ex = Assert.Throws<ModelOptException>(() => QuantPlanner.Plan(_models["llama"], pinnedWeights));
        Assert.Equal(QuantizationErrorIds.UnsupportedQuantizerFormat, ex.ErrorId);
        Assert.Contains("weight_quantizer", ex.Message);
        Assert.Contains("amax pinned to 2", ex.Message);
    }
}
