using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Quantization;

/// <summary>What a recipe entry's pattern is matched against.</summary>
public enum PatternTarget
{
    /// <summary>Full dotted quantizer names, as in ModelOpt's <c>quant_cfg</c> (<c>*mlp*weight_quantizer</c>).</summary>
    Quantizer,

    /// <summary>Module names (<c>-Include</c>/<c>-Exclude</c>): every quantizer of a matching module.</summary>
    Module,
}

/// <summary>
/// One entry of an ordered recipe: a pattern, an optional enable flag, an optional format. Entries are tried
/// against every quantizer in order and later entries win, as in ModelOpt. <see cref="Position"/> (1-based) and
/// <see cref="Source"/> let a plan say exactly which line decided a module.
/// </summary>
public sealed record RecipeEntry
{
    public required int Position { get; init; }

    public required string Pattern { get; init; }

    public PatternTarget Target { get; init; } = PatternTarget.Quantizer;

    /// <summary>Explicit enable flag; null when the entry only sets a format (which enables, as in ModelOpt).</summary>
    public bool? Enable { get; init; }

    /// <summary>The format set by the entry's <c>cfg</c>, or null for toggle-only entries.</summary>
    public QuantizerFormat? Format { get; init; }

    /// <summary>Restricts a module-pattern entry to weight or input quantizers; null for both.</summary>
    public QuantizerRole? Role { get; init; }

    /// <summary>ModelOpt's <c>parent_class</c> filter (e.g. <c>nn.Embedding</c>), or null.</summary>
    public string? ParentClass { get; init; }

    /// <summary>Where the entry came from: a preset, the default-disabled list, a file, -Include/-Exclude.</summary>
    public required string Source { get; init; }

    /// <summary>True when applying the entry leaves a quantizer enabled.</summary>
    public bool Enables => Enable ?? Format is not null;

    public override string ToString() =>
        $"#{Position} {(Target == PatternTarget.Module ? "module " : "")}'{Pattern}'" +
        (Role is { } role ? $" ({role.ToString().ToLowerInvariant()} quantizers)" : "") +
        (ParentClass is null ? "" : $" (parent {ParentClass})") +
        $" {(Enables ? "enable" : "disable")}" + (Format is null ? "" : $" {Format}") + $" [{Source}]";

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["quantizer_name"] = Pattern };
        if (ParentClass is not null) o["parent_class"] = ParentClass;
        if (Enable is { } e) o["enable"] = e;
        if (Format is not null) o["cfg"] = Format.ToJson();
        return o;
    }
}
