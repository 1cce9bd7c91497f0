namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The built-in recipes, as ModelOpt defines them (shared/spec/quant-config.md): disable everything, enable the
/// preset's quantizers with NVFP4, then apply the default-disabled list. Data, not code paths.
/// </summary>
public static class Presets
{
    public const string Default = "NVFP4_DEFAULT";

    /// <summary>Preset name to the quantizer patterns it enables and whether inputs are quantized too.</summary>
    private static readonly Dictionary<string, (string[] Scopes, bool WeightOnly)> Definitions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["NVFP4_DEFAULT"] = (["*"], false),
        ["NVFP4_MLP_ONLY"] = (["*mlp*", "*block_sparse_moe*", "*.experts.*"], false),
        ["NVFP4_EXPERTS_ONLY"] = (["*block_sparse_moe*", "*.experts.*"], false),
        ["NVFP4_OMLP_ONLY"] = (["*o_proj*", "*mlp*", "*block_sparse_moe*"], false),
        ["W4A16_NVFP4"] = (["*"], true),
    };

    /// <summary>ModelOpt's <c>configs/ptq/units/default_disabled_quantizers</c>, name patterns then parent classes.</summary>
    public static IReadOnlyList<string> DefaultDisabledPatterns { get; } =
    [
        "*block_sparse_moe.gate*", "*linear_attn.conv1d*", "*linear_attn.in_proj_a*", "*linear_attn.in_proj_b*",
        "*lm_head*", "*mixer.conv1d*", "*self_attention.conv1d*", "*mlp.gate.*", "*mlp.shared_expert_gate.*",
        "*output_layer*", "*proj_out.*", "*router*", "mtp.*", "output.*", "*embed_vision*", "*vision_tower*",
        "*visual*", "*vision_model*", "*multi_modal_projector*",
    ];

    public static IReadOnlyList<string> DefaultDisabledParentClasses { get; } =
        ["nn.BatchNorm1d", "nn.BatchNorm2d", "nn.BatchNorm3d", "nn.LeakyReLU", "nn.Embedding"];

    public static IReadOnlyList<string> Names { get; } = Definitions.Keys.ToList();

    public static bool Exists(string name) => Definitions.ContainsKey(name);

    /// <summary>True for presets that quantize weights only (no input scales, no calibration needed).</summary>
    public static bool IsWeightOnly(string name) => Definitions[name].WeightOnly;

    public static QuantRecipe Get(string name)
    {
        if (!Definitions.TryGetValue(name, out var definition))
            throw new ArgumentException($"Unknown preset '{name}'. Presets: {string.Join(", ", Names)}.", nameof(name));
        string canonical = Definitions.Keys.First(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        string source = $"preset {canonical}";
        var entries = new List<RecipeEntry> { DisableAll(source) };
        foreach (var scope in definition.Scopes)
        {
            entries.Add(Enable(scope + "weight_quantizer", source));
            if (!definition.WeightOnly) entries.Add(Enable(scope + "input_quantizer", source));
        }
        entries.AddRange(DefaultDisabled());
        return QuantRecipe.Build(canonical, entries);
    }

    public static RecipeEntry DisableAll(string source) =>
        new() { Position = 0, Pattern = "*", Enable = false, Source = source };

    public static IEnumerable<RecipeEntry> DefaultDisabled() =>
        DefaultDisabledPatterns.Select(p => new RecipeEntry { Position = 0, Pattern = p, Enable = false, Source = "default-disabled" })
            .Concat(DefaultDisabledParentClasses.Select(c => new RecipeEntry
            {
                Position = 0, Pattern = "*", ParentClass = c, Enable = false, Source = "default-disabled",
            }));

    private static RecipeEntry Enable(string pattern, string source) =>
        new() { Position = 0, Pattern = pattern, Format = QuantizerFormat.Nvfp4, Source = source };
}
