namespace ModelOptPS.Engine.Verification;

/// <summary>One merged layer of a checkpoint: a <see cref="MergedLayerKind"/> under one parent module.</summary>
/// <param name="Parent">The module whose children are the shards (<c>model.layers.0.self_attn</c>, <c>…experts.2</c>).</param>
internal sealed record MergedLayer(MergedLayerKind Kind, string Parent)
{
    /// <summary>Its shards' module names.</summary>
    public IEnumerable<string> Shards => Kind.Shards.Select(s => $"{Parent}.{s}");

    /// <summary>Where its shards' input comes from, the same for the merged layers of one parent that read one input.</summary>
    public string InputGroup => $"{Parent} {Kind.Input}";

    /// <summary>For reasons: <c>'model.layers.0.self_attn.qkv_proj' (q_proj, k_proj, v_proj)</c>, or per expert <c>'….experts.w13' of expert 2 (gate_proj, up_proj)</c>.</summary>
    public string Describe
    {
        get
        {
            string shards = string.Join(", ", Kind.Shards);
            if (!Kind.PerExpert) return $"'{Parent}.{Kind.Name}' ({shards})";
            int dot = Parent.LastIndexOf('.');
            return $"'{Parent[..dot]}.{Kind.Name}' of expert {Parent[(dot + 1)..]} ({shards})";
        }
    }
}
