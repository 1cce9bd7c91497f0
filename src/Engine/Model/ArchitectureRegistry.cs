namespace ModelOptPS.Engine.Model;

/// <summary>The model families ModelOptPS reads, and how a config is matched to one.</summary>
public static class ArchitectureRegistry
{
    private static readonly Dictionary<string, string> MixtralAliases = new()
    {
        ["w1"] = "gate_proj",
        ["w3"] = "up_proj",
        ["w2"] = "down_proj",
    };

    public static IReadOnlyList<ArchitectureSpec> All { get; } =
    [
        new() { Family = "Llama", ArchitectureNames = ["LlamaForCausalLM"], ModelTypes = ["llama"] },
        new() { Family = "Qwen2", ArchitectureNames = ["Qwen2ForCausalLM"], ModelTypes = ["qwen2"] },
        new() { Family = "Qwen3", ArchitectureNames = ["Qwen3ForCausalLM"], ModelTypes = ["qwen3"] },
        new()
        {
            Family = "Qwen3Moe", ArchitectureNames = ["Qwen3MoeForCausalLM"], ModelTypes = ["qwen3_moe"], IsMoE = true,
        },
        new()
        {
            Family = "Qwen3Next", ArchitectureNames = ["Qwen3NextForCausalLM"], ModelTypes = ["qwen3_next"],
            IsMoE = true, HasSharedExpert = true, HasLinearAttention = true, NormStyle = NormStyle.Offset,
        },
        new()
        {
            Family = "Qwen3_5Moe",
            ArchitectureNames = ["Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForCausalLM"],
            ModelTypes = ["qwen3_5_moe", "qwen3_5_moe_text"],
            IsMoE = true, FusedExpertsOnDisk = true, HasSharedExpert = true, HasLinearAttention = true,
            NormStyle = NormStyle.Offset,
        },
        new()
        {
            Family = "Qwen3_5",
            ArchitectureNames = ["Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM"],
            ModelTypes = ["qwen3_5", "qwen3_5_text"],
            HasLinearAttention = true, NormStyle = NormStyle.Offset,
        },
        new()
        {
            Family = "Mixtral", ArchitectureNames = ["MixtralForCausalLM"], ModelTypes = ["mixtral"], IsMoE = true, ExpertRoleAliases = MixtralAliases,
        },
    ];

    /// <summary>How a spec was chosen, so the choice can be explained to the user.</summary>
    public sealed record Resolution(ArchitectureSpec Spec, string? Architecture, string How);

    /// <summary>
    /// Matches <c>architectures[0]</c> first, then <c>model_type</c> (top level, then text_config). A null or
    /// missing <c>architectures</c> — the first of the four silent failures this project exists to stop — is
    /// resolved from <c>model_type</c> and reported.
    /// </summary>
    public static Resolution Resolve(string? architecture, string? modelType, string? textModelType)
    {
        if (architecture is not null)
        {
            var byName = All.FirstOrDefault(s => s.ArchitectureNames.Contains(architecture));
            if (byName is not null) return new(byName, architecture, $"architectures[0] = {architecture}");
        }
        foreach (var type in new[] { modelType, textModelType })
        {
            if (type is null) continue;
            var byType = All.FirstOrDefault(s => s.ModelTypes.Contains(type));
            if (byType is null) continue;
            var how = architecture is null
                ? $"architectures is null or missing; resolved from model_type '{type}' as {byType.ArchitectureNames[0]}"
                : $"architectures[0] '{architecture}' is not known; resolved from model_type '{type}'";
            return new(byType, architecture ?? byType.ArchitectureNames[0], how);
        }
        return new(ArchitectureSpec.Unknown, architecture,
            $"architecture '{architecture ?? "(none)"}' with model_type '{modelType ?? "(none)"}' is not a known family; modules were found by generic Linear discovery");
    }
}
