namespace ModelOptPS.Engine.Model;

/// <summary>Which RMSNorm form a family uses (matters for calibration forward passes and norm folding).</summary>
public enum NormStyle
{
    /// <summary><c>y = w * rmsnorm(x)</c>, weights near 1.</summary>
    Standard,

    /// <summary><c>y = (1 + w) * rmsnorm(x)</c>, weights near 0 (Qwen3-Next, Qwen3.5).</summary>
    Offset,
}

/// <summary>
/// What the engine knows about one model family, as data. Adding a family is adding an entry to
/// <see cref="ArchitectureRegistry"/>, not another branch in the code that reads checkpoints.
/// </summary>
public sealed record ArchitectureSpec
{
    /// <summary>Short family name, e.g. <c>Qwen3_5Moe</c>.</summary>
    public required string Family { get; init; }

    /// <summary><c>architectures</c> values that name this family; the first is written when a config lacks one.</summary>
    public required IReadOnlyList<string> ArchitectureNames { get; init; }

    /// <summary><c>model_type</c> values (top level or text_config) that name this family.</summary>
    public required IReadOnlyList<string> ModelTypes { get; init; }

    public bool IsMoE { get; init; }

    /// <summary>Experts stored as 3-D <c>gate_up_proj</c>/<c>down_proj</c> tensors in published checkpoints.</summary>
    public bool FusedExpertsOnDisk { get; init; }

    public bool HasSharedExpert { get; init; }

    /// <summary>Has Gated DeltaNet linear-attention layers (Qwen3-Next, Qwen3.5).</summary>
    public bool HasLinearAttention { get; init; }

    public NormStyle NormStyle { get; init; } = NormStyle.Standard;

    /// <summary>Per-expert projection names that differ from gate_proj/up_proj/down_proj (Mixtral's w1/w3/w2).</summary>
    public IReadOnlyDictionary<string, string> ExpertRoleAliases { get; init; } = new Dictionary<string, string>();

    /// <summary>Family used when nothing in the registry matches: generic Linear discovery.</summary>
    public static ArchitectureSpec Unknown { get; } = new()
    {
        Family = "Unknown",
        ArchitectureNames = [],
        ModelTypes = [],
    };

    public bool IsKnown => !ReferenceEquals(this, Unknown);
}
