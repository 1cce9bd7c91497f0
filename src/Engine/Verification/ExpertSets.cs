using System.Text.RegularExpressions;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The per-expert module names of a split MoE layer (<c>&lt;experts&gt;.&lt;e&gt;.&lt;projection&gt;</c>): engines
/// quantize all experts of a layer or none, and every expert of one layer shares the gate/up input_scale and the
/// down input_scale (checkpoint-contract.md, "Shared scales").
/// </summary>
internal static partial class ExpertSets
{
    [GeneratedRegex(@"^(?<experts>.+\.experts)\.(?<expert>\d+)\.(?<projection>[^.]+)$")]
    private static partial Regex ExpertModule();

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
}
