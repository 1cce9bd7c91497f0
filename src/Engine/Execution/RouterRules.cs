using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Whether a family renormalises its top-k routing weights (architectures.md §4.1), as data: Qwen3.5-MoE and Mixtral
/// always; Qwen3-MoE and Qwen3-Next when <c>norm_topk_prob</c> is true, with transformers' config defaults when the key
/// is missing (false for Qwen3-MoE, true for Qwen3-Next).
/// </summary>
internal static class RouterRules
{
    private sealed record Rule(bool Always, bool DefaultWhenUnset);

    private static readonly Dictionary<string, Rule> ByFamily = new(StringComparer.Ordinal)
    {
        ["Qwen3Moe"] = new(Always: false, DefaultWhenUnset: false),
        ["Qwen3Next"] = new(Always: false, DefaultWhenUnset: true),
        ["Qwen3_5Moe"] = new(Always: true, DefaultWhenUnset: true),
        ["Mixtral"] = new(Always: true, DefaultWhenUnset: true),
    };

    /// <summary>The family's choice, or null for a family whose routing is not described here.</summary>
    public static bool? Renormalize(string family, ModelConfig config) =>
        ByFamily.TryGetValue(family, out var rule)
            ? rule.Always || (ModelConfig.GetBool(config.Text, "norm_topk_prob") ?? rule.DefaultWhenUnset)
            : null;
}
