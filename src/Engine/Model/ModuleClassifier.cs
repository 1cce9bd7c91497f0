using System.Text.RegularExpressions;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Model;

/// <summary>
/// Decides a module's kind, section, layer, expert and role from its name and its parameters' shapes. The rules
/// are the same for every family (names in Hugging Face checkpoints are consistent across them); the family only
/// contributes renamings such as Mixtral's w1/w2/w3.
/// </summary>
public static partial class ModuleClassifier
{
    /// <summary>Routers and shared-expert gates: small Linears that choose experts and are never quantized.</summary>
    private static readonly string[] RouterSuffixes = [".mlp.gate", ".block_sparse_moe.gate", ".shared_expert_gate"];

    private static readonly string[] EmbeddingNames = ["embed_tokens", "wte", "word_embeddings", "pos_embed", "embed_positions", "embeddings"];

    [GeneratedRegex(@"(?:^|\.)layers\.(\d+)\.")]
    private static partial Regex LayerPattern();

    [GeneratedRegex(@"\.experts\.(\d+)\.")]
    private static partial Regex ExpertPattern();

    public static ModuleKind Kind(string module, IReadOnlyDictionary<string, TensorInfo> parameters)
    {
        if (IsFusedExperts(parameters)) return ModuleKind.FusedExperts;
        if (!parameters.TryGetValue("weight", out var weight)) return ModuleKind.Other;
        string last = LastComponent(module);
        return weight.Rank switch
        {
            >= 3 => ModuleKind.Conv,
            1 => last.Contains("norm", StringComparison.OrdinalIgnoreCase) || last.StartsWith("ln", StringComparison.Ordinal)
                ? ModuleKind.Norm
                : ModuleKind.Other,
            2 when EmbeddingNames.Contains(last) => ModuleKind.Embedding,
            2 when IsRouter(module) => ModuleKind.Router,
            2 => ModuleKind.Linear,
            _ => ModuleKind.Other,
        };
    }

    public static bool IsFusedExperts(IReadOnlyDictionary<string, TensorInfo> parameters) =>
        (parameters.TryGetValue("gate_up_proj", out var gu) && gu.Rank == 3)
        || (parameters.TryGetValue("down_proj", out var d) && d.Rank == 3);

    public static bool IsRouter(string module) =>
        RouterSuffixes.Any(s => module.EndsWith(s, StringComparison.Ordinal))
        || LastComponent(module).Contains("router", StringComparison.Ordinal);

    public static ModelSection Section(string module) =>
        module.StartsWith("mtp.", StringComparison.Ordinal) || module == "mtp" ? ModelSection.Mtp
        : module.StartsWith("model.visual.", StringComparison.Ordinal) || module.StartsWith("visual.", StringComparison.Ordinal)
          || module.Contains("vision_tower", StringComparison.Ordinal) || module.Contains("vision_model", StringComparison.Ordinal)
            ? ModelSection.Vision
            : ModelSection.Text;

    public static int? Layer(string module)
    {
        var m = LayerPattern().Match(module + ".");
        return m.Success ? int.Parse(m.Groups[1].ValueSpan) : null;
    }

    public static int? Expert(string module)
    {
        var m = ExpertPattern().Match(module + ".");
        return m.Success ? int.Parse(m.Groups[1].ValueSpan) : null;
    }

    public static string Role(string module, ArchitectureSpec spec)
    {
        string last = LastComponent(module);
        return Expert(module) is not null && spec.ExpertRoleAliases.TryGetValue(last, out var alias) ? alias : last;
    }

    public static string LastComponent(string dotted)
    {
        int dot = dotted.LastIndexOf('.');
        return dot < 0 ? dotted : dotted[(dot + 1)..];
    }
}
