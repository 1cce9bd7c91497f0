using System.Text.RegularExpressions;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Which modules engines load as one, and so must share scales (checkpoint-contract.md, "Shared scales"):
/// q/k/v of one attention block and gate/up of one MLP or expert (Mixtral: w1/w3) share weight_scale_2 and
/// input_scale; every expert of one MoE layer shares the gate/up input_scale and the down input_scale.
/// The linear-attention input projections of one layer share weight_scale_2 too (<see cref="WeightScaleGroup"/>);
/// o_proj, down_proj and out_proj stand alone.
/// </summary>
internal static partial class FusedGroups
{
    [GeneratedRegex(@"^(?<experts>.+\.experts)\.(?<expert>\d+)\.(?<projection>[^.]+)$")]
    private static partial Regex ExpertModule();

    /// <summary>The fused layer a module is a shard of (e.g. <c>model.layers.0.self_attn q/k/v</c>), or null.</summary>
    public static string? FusedLayer(string module)
    {
        int dot = module.LastIndexOf('.');
        if (dot < 0) return null;
        string parent = module[..dot];
        return ModuleClassifier.LastComponent(module) switch
        {
            "q_proj" or "k_proj" or "v_proj" => parent + " q/k/v",
            "gate_proj" or "up_proj" => parent + " gate/up",
            "w1" or "w3" when ExpertModule().IsMatch(module) => parent + " w1/w3",
            _ => null,
        };
    }

    /// <summary>
    /// The modules whose <c>weight_scale_2</c> comes from one max amax: a fused layer's shards, and the quantized
    /// linear-attention input projections of one layer (they read the same hidden states: Qwen3.5's in_proj_qkv, in_proj_z,
    /// in_proj_b, in_proj_a; Qwen3-Next's in_proj_qkvz, in_proj_ba). Null for a module that stands alone.
    /// </summary>
    public static string? WeightScaleGroup(string module) =>
        FusedLayer(module) ?? (ModuleClassifier.LastComponent(module).StartsWith("in_proj_", StringComparison.Ordinal)
            && module.Contains(".linear_attn.", StringComparison.Ordinal)
                ? module[..module.LastIndexOf('.')] + " in_proj"
                : null);

    /// <summary>The expert set and projection a per-expert module belongs to (e.g. <c>…mlp.experts gate/up</c>), or null.</summary>
    public static string? ExpertSet(string module)
    {
        var m = ExpertModule().Match(module);
        if (!m.Success) return null;
        return m.Groups["projection"].Value switch
        {
            "gate_proj" or "up_proj" or "w1" or "w3" => m.Groups["experts"].Value + " gate/up",
            "down_proj" or "w2" => m.Groups["experts"].Value + " down",
            _ => null,
        };
    }

    /// <summary>The experts container of a per-expert module (<c>model.layers.0.mlp.experts</c>), or null.</summary>
    public static string? ExpertsContainer(string module)
    {
        var m = ExpertModule().Match(module);
        return m.Success ? m.Groups["experts"].Value : null;
    }

    /// <summary>The expert set, index and projection of a per-expert module, to name the same projection of another expert.</summary>
    public static (string Experts, int Expert, string Projection)? SplitExpert(string module)
    {
        var m = ExpertModule().Match(module);
        return m.Success ? (m.Groups["experts"].Value, int.Parse(m.Groups["expert"].ValueSpan), m.Groups["projection"].Value) : null;
    }

    /// <summary>The other shards of a module's fused layer, by their last name component.</summary>
    public static IEnumerable<string> Siblings(string module) => ModuleClassifier.LastComponent(module) switch
    {
        "q_proj" => ["k_proj", "v_proj"],
        "k_proj" => ["q_proj", "v_proj"],
        "v_proj" => ["q_proj", "k_proj"],
        "gate_proj" => ["up_proj"],
        "up_proj" => ["gate_proj"],
        "w1" => ["w3"],
        "w3" => ["w1"],
        _ => [],
    };
}
