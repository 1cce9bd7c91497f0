using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The layers a consumer loads as one, per family, as vLLM's model files define them (<c>packed_modules_mapping</c>,
/// plus the fused MoE's per-expert <c>w13</c> from <c>make_expert_params_mapping</c>). The shards of one merged layer
/// must agree in precision (vLLM refuses "some but not all shards … are quantized", and one merged layer has one
/// quantization scheme: all NVFP4, all W4A16_NVFP4, all FP8 or all unquantized) and, when NVFP4, carry bit-identical
/// weight_scale_2 and input_scale (vLLM keeps one of each without rescaling the block scales; checkpoint-contract.md,
/// "Shared scales"). FP8 shards keep their own scales: ModelOpt does not unify them, and vLLM requantizes the merged
/// weight to the max of the shards' weight_scale. A family the registry does not know is checked against every kind below: the shard names are
/// distinctive, and a checkpoint that has them is loaded the same way.
/// </summary>
internal sealed class MergedLayerTable
{
    private const string Attention = "attention input";
    private const string Mlp = "MLP input";
    private const string LinearAttention = "linear-attention input";

    private static readonly MergedLayerKind Qkv = new("qkv_proj", ["q_proj", "k_proj", "v_proj"], Attention);
    private static readonly MergedLayerKind GateUp = new("gate_up_proj", ["gate_proj", "up_proj"], Mlp);
    private static readonly MergedLayerKind ExpertGateUp = new("w13", ["gate_proj", "up_proj"], Mlp, PerExpert: true);
    private static readonly MergedLayerKind MixtralW13 = new("w13", ["w1", "w3"], Mlp, PerExpert: true);
    private static readonly MergedLayerKind GdnQkvz = new("in_proj_qkvz", ["in_proj_qkv", "in_proj_z"], LinearAttention);
    private static readonly MergedLayerKind GdnBa = new("in_proj_ba", ["in_proj_b", "in_proj_a"], LinearAttention);
    private static readonly MergedLayerKind NextQkvz = new("in_proj_qkvz", ["in_proj_qkvz"], LinearAttention);
    private static readonly MergedLayerKind NextBa = new("in_proj_ba", ["in_proj_ba"], LinearAttention);

    /// <summary>By <see cref="ArchitectureSpec.Family"/>.</summary>
    private static readonly Dictionary<string, MergedLayerKind[]> ByFamily = new(StringComparer.Ordinal)
    {
        ["Llama"] = [Qkv, GateUp],
        ["Qwen2"] = [Qkv, GateUp],
        ["Qwen3"] = [Qkv, GateUp],
        ["Qwen3Moe"] = [Qkv, GateUp, ExpertGateUp],
        ["Mixtral"] = [Qkv, MixtralW13],
        ["Qwen3Next"] = [Qkv, GateUp, ExpertGateUp, NextQkvz, NextBa],
        ["Qwen3_5"] = [Qkv, GateUp, GdnQkvz, GdnBa],
        ["Qwen3_5Moe"] = [Qkv, GateUp, ExpertGateUp, GdnQkvz, GdnBa],
    };

    private static readonly MergedLayerKind[] AnyFamily = ByFamily.Values.SelectMany(k => k).Distinct().ToArray();

    private readonly IReadOnlyList<MergedLayerKind> _kinds;

    private MergedLayerTable(string family, IReadOnlyList<MergedLayerKind> kinds)
    {
        Family = family;
        _kinds = kinds;
    }

    /// <summary>The families with a table of their own.</summary>
    public static IReadOnlyCollection<string> Families => ByFamily.Keys;

    /// <summary>The family whose table is used (<c>Unknown</c>: every kind).</summary>
    public string Family { get; }

    /// <summary>The table for the family a config names; every kind when there is no config or the family is unknown.</summary>
    public static MergedLayerTable For(ModelConfig? config)
    {
        var spec = config is null
            ? ArchitectureSpec.Unknown
            : ArchitectureRegistry.Resolve(config.Architecture, config.ModelType, config.TextModelType).Spec;
        return ByFamily.TryGetValue(spec.Family, out var kinds) ? new(spec.Family, kinds) : new(ArchitectureSpec.Unknown.Family, AnyFamily);
    }

    /// <summary>The merged layer a module is a shard of, or null when the consumers load it alone.</summary>
    public MergedLayer? Of(string module)
    {
        int dot = module.LastIndexOf('.');
        if (dot < 0) return null;
        string shard = module[(dot + 1)..];
        bool perExpert = ExpertSets.SplitExpert(module) is not null;
        var kind = _kinds.FirstOrDefault(k => k.PerExpert == perExpert && k.Shards.Contains(shard));
        return kind is null ? null : new MergedLayer(kind, module[..dot]);
    }

    /// <summary>The other shards of a module's merged layer (full module names).</summary>
    public IEnumerable<string> Siblings(string module) => Of(module)?.Shards.Where(s => s != module) ?? [];
}
