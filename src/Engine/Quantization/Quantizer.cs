using System.Text.RegularExpressions;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>Whether a quantizer acts on a module's weight, on its input activations, or on the KV cache.</summary>
public enum QuantizerRole
{
    Weight,
    Input,

    /// <summary>An attention block's <c>k_bmm_quantizer</c> or <c>v_bmm_quantizer</c>: keys after RoPE, values, as cached.</summary>
    KvCache,
}

/// <summary>
/// One quantizer, named exactly as ModelOpt names it (shared/spec/quant-config.md): <c>&lt;m&gt;.weight_quantizer</c>
/// and <c>&lt;m&gt;.input_quantizer</c> for a Linear; for fused experts <c>&lt;x&gt;.gate_up_proj_weight_quantizers.&lt;e&gt;</c>,
/// <c>&lt;x&gt;.down_proj_weight_quantizers.&lt;e&gt;</c> and the shared <c>&lt;x&gt;.gate_up_proj_input_quantizer</c>,
/// <c>&lt;x&gt;.down_proj_input_quantizer</c>; for the KV cache of an attention block <c>&lt;a&gt;</c>,
/// <c>&lt;a&gt;.k_bmm_quantizer</c> and <c>&lt;a&gt;.v_bmm_quantizer</c> (<see cref="Module"/> is then its k_proj / v_proj).
/// </summary>
public sealed partial record Quantizer(string Name, ModelModule Module, QuantizerRole Role, string? Projection, int? Expert)
{
    [GeneratedRegex(@"(weight_quantizer|input_quantizer)s?\.\d+(?=$|\.)")]
    private static partial Regex PluralIndex();

    /// <summary>
    /// The plural-indexed name in singular form (<c>…gate_up_proj_weight_quantizers.7</c> →
    /// <c>…gate_up_proj_weight_quantizer</c>), so recipes written for <c>*weight_quantizer</c> reach fused experts.
    /// Without this rule every fused expert stays bf16 with no error (the seed bug's recipe defect).
    /// </summary>
    public string SingularName => PluralIndex().Replace(Name, "$1");

    /// <summary>The names module patterns (-Include/-Exclude) are tried against: the module and, for one fused expert,
    /// the per-expert names it is exported under.</summary>
    public IReadOnlyList<string> ModuleNames => Expert is not { } e
        ? [Module.Name]
        : Projection == "gate_up_proj"
            ? [Module.Name, $"{Module.Name}.{e}.gate_proj", $"{Module.Name}.{e}.up_proj"]
            : [Module.Name, $"{Module.Name}.{e}.down_proj"];

    /// <summary>ModelOpt <c>parent_class</c> names this quantizer's module answers to.</summary>
    public IReadOnlyList<string> ParentClasses => Role == QuantizerRole.KvCache ? ["Attention"] : Module.Kind switch
    {
        ModuleKind.FusedExperts => ["FusedExperts"],
        ModuleKind.Embedding => ["nn.Embedding"],
        _ => ["nn.Linear"],
    };

    public bool Matches(RecipeEntry entry)
    {
        if (entry.ParentClass is not null && !ParentClasses.Contains(entry.ParentClass)) return false;
        if (entry.Role is { } role && role != Role) return false;
        // -Include/-Exclude name modules (Linears, experts); the KV cache is set by the recipe or -KvCache.
        if (entry.Target == PatternTarget.Module) return Role != QuantizerRole.KvCache && ModuleNames.Any(n => Fnmatch.IsMatch(n, entry.Pattern));
        return Fnmatch.IsMatch(Name, entry.Pattern) || (SingularName != Name && Fnmatch.IsMatch(SingularName, entry.Pattern));
    }

    /// <summary>The KV-cache quantizers of the attention block that owns <paramref name="keyProjection"/> and <paramref name="valueProjection"/>.</summary>
    public static IReadOnlyList<Quantizer> ForKvCache(string attention, ModelModule keyProjection, ModelModule valueProjection) =>
    [
        new($"{attention}.k_bmm_quantizer", keyProjection, QuantizerRole.KvCache, null, null),
        new($"{attention}.v_bmm_quantizer", valueProjection, QuantizerRole.KvCache, null, null),
    ];

    /// <summary>The quantizers of a module; none for kinds that are never quantized (norms, embeddings, convs).</summary>
    public static IReadOnlyList<Quantizer> For(ModelModule module)
    {
        switch (module.Kind)
        {
            case ModuleKind.Linear:
            case ModuleKind.Router:
                return
                [
                    new($"{module.Name}.weight_quantizer", module, QuantizerRole.Weight, null, null),
                    new($"{module.Name}.input_quantizer", module, QuantizerRole.Input, null, null),
                ];
            case ModuleKind.FusedExperts:
                var list = new List<Quantizer>();
                foreach (var projection in new[] { "gate_up_proj", "down_proj" })
                {
                    if (!module.Parameters.TryGetValue(projection, out var tensor)) continue;
                    for (int e = 0; e < tensor.Shape[0]; e++)
                        list.Add(new($"{module.Name}.{projection}_weight_quantizers.{e}", module, QuantizerRole.Weight, projection, e));
                    list.Add(new($"{module.Name}.{projection}_input_quantizer", module, QuantizerRole.Input, projection, null));
                }
                return list;
            default:
                return [];
        }
    }
}
