namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The built-in recipes, as ModelOpt defines them (shared/spec/quant-config.md, <c>modelopt_recipes/</c>): disable
/// everything, enable the preset's quantizers, then apply the default-disabled list. Data, not code paths. Besides
/// ModelOpt's NVFP4 presets, two reproduce NVIDIA's published Qwen3.5/3.6 checkpoints (their hf_quant_config.json, copied
/// in ai-dynamo/aiconfigurator <c>aic-core/src/aiconfigurator_core/model_configs/</c>):
/// <c>NVFP4_EXPERTS_ONLY_KV_FP8_CAST</c> (nvidia/Qwen3.5-397B-A17B-NVFP4, 122B-A10B: NVFP4 routed experts, FP8 KV cache;
/// ModelOpt's <c>general/ptq/nvfp4_experts_only-kv_fp8_cast</c>) and <c>W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST</c>
/// (nvidia/Qwen3.6-35B-A3B-NVFP4, 27B: MIXED_PRECISION; ModelOpt's
/// <c>huggingface/qwen3_5/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast</c>).
/// </summary>
public static class Presets
{
    public const string Default = "NVFP4_DEFAULT";

    private sealed record Preset(string Description, bool WeightOnly, Func<string, IEnumerable<RecipeEntry>> Body);

    private static readonly Dictionary<string, Preset> Definitions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["NVFP4_DEFAULT"] = Scoped("NVFP4 weights and activations (W4A4) on every Linear", ["*"], weightOnly: false),
        ["NVFP4_MLP_ONLY"] = Scoped("W4A4 NVFP4 on MLPs and experts", ["*mlp*", "*block_sparse_moe*", "*.experts.*"], weightOnly: false),
        ["NVFP4_EXPERTS_ONLY"] = Scoped("W4A4 NVFP4 on MoE experts", ["*block_sparse_moe*", "*.experts.*"], weightOnly: false),
        ["NVFP4_OMLP_ONLY"] = Scoped("W4A4 NVFP4 on o_proj and MLPs", ["*o_proj*", "*mlp*", "*block_sparse_moe*"], weightOnly: false),
        ["W4A16_NVFP4"] = Scoped("NVFP4 weights only, no calibration", ["*"], weightOnly: true),
        ["NVFP4_EXPERTS_ONLY_KV_FP8_CAST"] = new(
            "W4A4 NVFP4 on MoE experts, FP8 KV cache (nvidia/Qwen3.5-397B-A17B-NVFP4 style)", false,
            source => ScopeEntries(["*.experts.*", "*block_sparse_moe*"], weightOnly: false, source)
                .Append(KvCache(QuantizerFormat.Fp8Cast, source))
                .Concat(DefaultDisabled())),
        ["W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST"] = new(
            "NVFP4 weights on MLPs, experts and lm_head, FP8 attention, FP8 KV cache (nvidia/Qwen3.6-35B-A3B-NVFP4 style, MIXED_PRECISION)", false,
            Qwen35MixedPrecision),
    };

    /// <summary>ModelOpt's <c>configs/ptq/units/default_disabled_quantizers</c>, name patterns then parent classes.</summary>
    public static IReadOnlyList<string> DefaultDisabledPatterns { get; } =
    [
        "*block_sparse_moe.gate*", "*linear_attn.conv1d*", "*linear_attn.in_proj_a*", "*linear_attn.in_proj_b*",
        "*lm_head*", "*mixer.conv1d*", "*mlp.gate.*", "*mlp.shared_expert_gate.*",
        "*output_layer*", "*proj_out.*", "*router*", "mtp.*", "output.*", "*embed_vision*", "*vision_tower*",
        "*visual*", "*vision_model*", "*multi_modal_projector*",
    ];

    public static IReadOnlyList<string> DefaultDisabledParentClasses { get; } =
        ["nn.BatchNorm1d", "nn.BatchNorm2d", "nn.BatchNorm3d", "nn.LeakyReLU", "nn.Embedding"];

    /// <summary>ModelOpt's KV-cache quantizer pattern (<c>configs/ptq/units/kv_fp8*.yaml</c>).</summary>
    public const string KvCachePattern = "*[kv]_bmm_quantizer";

    public static IReadOnlyList<string> Names { get; } = Definitions.Keys.ToList();

    public static bool Exists(string name) => Definitions.ContainsKey(name);

    /// <summary>True for presets that quantize weights only (no input scales, no calibration needed).</summary>
    public static bool IsWeightOnly(string name) => Definitions[name].WeightOnly;

    /// <summary>What a preset does, for tab completion and help.</summary>
    public static string Describe(string name) => Definitions[name].Description;

    public static QuantRecipe Get(string name)
    {
        if (!Definitions.TryGetValue(name, out var definition))
            throw new ArgumentException($"Unknown preset '{name}'. Presets: {string.Join(", ", Names)}.", nameof(name));
        string canonical = Definitions.Keys.First(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        string source = $"preset {canonical}";
        return QuantRecipe.Build(canonical, definition.Body(source).Prepend(DisableAll(source)));
    }

    public static RecipeEntry DisableAll(string source) =>
        new() { Position = 0, Pattern = "*", Enable = false, Source = source };

    public static IEnumerable<RecipeEntry> DefaultDisabled() =>
        DefaultDisabledPatterns.Select(p => new RecipeEntry { Position = 0, Pattern = p, Enable = false, Source = "default-disabled" })
            .Concat(DefaultDisabledParentClasses.Select(c => new RecipeEntry
            {
                Position = 0, Pattern = "*", ParentClass = c, Enable = false, Source = "default-disabled",
            }));

    /// <summary>The KV-cache entry: FP8 (<see cref="QuantizerFormat.Fp8"/>, scales calibrated), FP8 cast, or null to disable.</summary>
    public static RecipeEntry KvCache(QuantizerFormat? format, string source) => format is null
        ? new() { Position = 0, Pattern = KvCachePattern, Enable = false, Source = source }
        : new() { Position = 0, Pattern = KvCachePattern, Format = format, Source = source };

    private static Preset Scoped(string description, string[] scopes, bool weightOnly) =>
        new(description, weightOnly, source => ScopeEntries(scopes, weightOnly, source).Concat(DefaultDisabled()));

    private static IEnumerable<RecipeEntry> ScopeEntries(string[] scopes, bool weightOnly, string source)
    {
        foreach (var scope in scopes)
        {
            yield return Enable(scope + "weight_quantizer", QuantizerFormat.Nvfp4, source);
            if (!weightOnly) yield return Enable(scope + "input_quantizer", QuantizerFormat.Nvfp4, source);
        }
    }

    /// <summary>
    /// ModelOpt's Qwen3.5 <c>w4a16_nvfp4-fp8_attn-kv_fp8_cast</c> quant_cfg, entry for entry: NVFP4 weights on MLP
    /// projections (dense, shared expert, fused experts), FP8 self-attention and large linear-attention projections, FP8
    /// KV cast, the default-disabled list, in_proj_a/b, vision and MTP off, then lm_head weights back on as NVFP4.
    /// </summary>
    private static IEnumerable<RecipeEntry> Qwen35MixedPrecision(string source)
    {
        foreach (var projection in new[] { "gate_proj", "up_proj", "down_proj" })
            yield return Enable($"*mlp*{projection}*weight_quantizer*", QuantizerFormat.Nvfp4, source);
        yield return Enable("*self_attn*weight_quantizer", QuantizerFormat.Fp8, source);
        yield return Enable("*self_attn*input_quantizer", QuantizerFormat.Fp8, source);
        foreach (var projection in new[] { "in_proj_qkv", "in_proj_z", "out_proj" })
        {
            yield return Enable($"*linear_attn.{projection}*weight_quantizer", QuantizerFormat.Fp8, source);
            yield return Enable($"*linear_attn.{projection}*input_quantizer", QuantizerFormat.Fp8, source);
        }
        yield return KvCache(QuantizerFormat.Fp8Cast, source);
        foreach (var entry in DefaultDisabled()) yield return entry;
        foreach (var pattern in new[] { "*linear_attn.in_proj_a*", "*linear_attn.in_proj_b*", "*visual*", "*vision_tower*", "*mtp*" })
            yield return new RecipeEntry { Position = 0, Pattern = pattern, Enable = false, Source = source };
        yield return Enable("*lm_head*weight_quantizer", QuantizerFormat.Nvfp4, source);
    }

    private static RecipeEntry Enable(string pattern, QuantizerFormat format, string source) =>
        new() { Position = 0, Pattern = pattern, Format = format, Source = source };
}
