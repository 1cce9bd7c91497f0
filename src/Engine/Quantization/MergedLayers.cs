using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The layers consumers load as one from several checkpoint modules (vLLM's <c>packed_modules_mapping</c>: qkv_proj =
/// q/k/v, gate_up_proj = gate/up, Qwen3.5's in_proj_qkvz = in_proj_qkv + in_proj_z and in_proj_ba = in_proj_b +
/// in_proj_a; an expert's w13 = its gate/up, Mixtral's w1/w3). vLLM refuses such a layer when some shards are quantized
/// and others not ("Detected some but not all shards of … are quantized"), and runs all shards with one format, so a
/// plan must give every shard the same decision. (Fused experts hold gate and up in one tensor: never split.)
/// </summary>
public static class MergedLayers
{
    private const int GroupsShown = 5;

    /// <summary>vLLM's merged layers and their shards' roles, in the order it packs them.</summary>
    private static readonly (string Merged, string[] Shards)[] PackedModules =
    [
        ("qkv_proj", ["q_proj", "k_proj", "v_proj"]),
        ("gate_up_proj", ["gate_proj", "up_proj"]),
        ("in_proj_qkvz", ["in_proj_qkv", "in_proj_z"]),
        ("in_proj_ba", ["in_proj_b", "in_proj_a"]),
    ];

    /// <summary>Shard role to its merged layer's name and its place in it.</summary>
    private static readonly Dictionary<string, (string Merged, int Index)> ShardOf = PackedModules
        .SelectMany(p => p.Shards.Select((role, i) => (role, p.Merged, i)))
        .ToDictionary(x => x.role, x => (x.Merged, x.i), StringComparer.Ordinal);

    /// <summary>The merged layer a Linear is a shard of (<c>model.layers.0.self_attn.qkv_proj</c>), or null.</summary>
    public static string? Of(ModelModule module)
    {
        if (module.Kind != ModuleKind.Linear || !ShardOf.TryGetValue(module.Role, out var shard)) return null;
        int dot = module.Name.LastIndexOf('.');
        if (dot < 0) return null;
        // An expert's gate and up load as the experts' w13, Mixtral's w1/w3 (roles gate_proj/up_proj) included.
        return $"{module.Name[..dot]}.{(module.Expert is null ? shard.Merged : "w13")}";
    }

    /// <summary>Throws <see cref="QuantizationErrorIds.MergedLayerPartiallyQuantized"/> when the shards of a merged layer are decided
    /// differently: some quantized and some not, or in different formats (FP8 q with NVFP4 k, …).</summary>
    public static void Check(IReadOnlyList<ModulePlan> modules, string recipe, string modelPath)
    {
        var split = modules.Where(m => Of(m.Module) is not null)
            .GroupBy(m => Of(m.Module)!)
            .Where(g => g.Select(m => Format(m.Decision)).Distinct().Count() > 1)
            .ToList();
        if (split.Count == 0) return;
        var first = split[0].OrderBy(m => ShardOf[m.Module.Role].Index).ToList();
        string shards = string.Join(", ", first.Select(m => $"{ModuleClassifier.LastComponent(m.Name)} {Format(m.Decision)} ({m.Reason})"));
        // One layer split: its own shards; several: the same shards of every layer and expert.
        string patterns = string.Join(", ", first.Select(m => $"'{(split.Count == 1 ? m.Name : PlanGuards.SiblingKey(m.Name))}'"));
        string others = split.Count == 1 ? "" :
            $" The same holds for {split.Count - 1} more: {string.Join(", ", split.Skip(1).Take(GroupsShown).Select(g => g.Key))}" +
            (split.Count - 1 > GroupsShown ? ", …." : ".");
        throw new ModelOptException(QuantizationErrorIds.MergedLayerPartiallyQuantized, ErrorKind.InvalidOperation,
            $"Recipe '{recipe}' decides the shards of the merged layer {split[0].Key} differently: {shards}. vLLM loads " +
            $"{string.Join(" + ", first.Select(m => ModuleClassifier.LastComponent(m.Name)))} as one layer and refuses one quantized " +
            "only in part (\"some but not all shards are quantized\"), or runs every shard in one format." + others +
            $" Give the shards one decision: -Exclude {patterns} keeps them all unquantized, -Include {patterns} quantizes " +
            "them all, or make the recipe's entries match every shard alike.", modelPath);
    }

    private static string Format(QuantDecision decision) => decision.QuantAlgo() ?? "unquantized";
}
