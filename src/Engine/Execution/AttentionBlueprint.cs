namespace ModelOptPS.Engine.Execution;

/// <summary>A softmax-attention layer: shape from config, output gate from q_proj's rows, q/k norms and biases from the tensors present.</summary>
internal sealed record AttentionBlueprint(string Prefix, AttentionShape Shape, IReadOnlyList<string> Tensors) : IMixerBlueprint
{
    IEnumerable<string> IBlockBlueprint.Tensors => Tensors;

    /// <summary>q, k and v all project the normed hidden states (<see cref="AttentionBlock"/>).</summary>
    public IEnumerable<SharedInput> SharedInputs => [new([Prefix + "q_proj", Prefix + "k_proj", Prefix + "v_proj"])];

    public static AttentionBlueprint? TryPlan(LayerProbe probe, string layerPrefix, int layer)
    {
        string p = layerPrefix + "self_attn.";
        if (!probe.Has(p + "q_proj.weight")) return null;
        var config = probe.Config;
        int heads = probe.Require("num_attention_heads");
        int kvHeads = config.KeyValueHeads ?? heads;
        int headDim = config.HeadDim ?? throw probe.Fail("config.json gives neither head_dim nor hidden_size.");
        long qRows = probe.Shape(p + "q_proj.weight")[0];
        if (qRows != heads * headDim && qRows != 2L * heads * headDim)
            throw probe.Fail($"{p}q_proj has {qRows} rows; expected {heads} heads × {headDim} (or twice that with an output gate).");
        if (heads % kvHeads != 0) throw probe.Fail($"{heads} attention heads are not a multiple of {kvHeads} KV heads.");

        var tensors = new List<string>();
        foreach (var projection in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) tensors.AddRange(probe.LinearTensors(p + projection));
        bool qkNorm = probe.Has(p + "q_norm.weight");
        if (qkNorm) tensors.AddRange([p + "q_norm.weight", p + "k_norm.weight"]);
        var shape = new AttentionShape(heads, kvHeads, headDim, qRows == 2L * heads * headDim, probe.Spec.NormStyle, probe.Eps,
            SlidingWindow(probe, layer));
        return new AttentionBlueprint(p, shape, tensors);
    }

    /// <summary>
    /// transformers' rule: a layer typed <c>sliding_attention</c>, or (older configs) every layer from
    /// <c>max_window_layers</c> on when <c>use_sliding_window</c> is true; Mixtral-style configs give
    /// <c>sliding_window</c> alone. Null = full causal attention.
    /// </summary>
    private static int? SlidingWindow(LayerProbe probe, int layer)
    {
        var config = probe.Config;
        int? window = config.GetInt("sliding_window");
        if (window is null) return null;
        if (config.LayerTypes is { } types) return layer < types.Count && types[layer] == "sliding_attention" ? window : null;
        if (Checkpoint.ModelConfig.GetBool(config.Text, "use_sliding_window") is { } use)
            return use && layer >= (config.GetInt("max_window_layers") ?? 0) ? window : null;
        return window;
    }

    public ISequenceMixer Build(WeightLoader loader, MaterializedWeights owner, RotaryEmbedding rope)
    {
        var weights = new AttentionWeights(
            loader.Linear(owner, Prefix + "q_proj"),
            loader.Linear(owner, Prefix + "k_proj"),
            loader.Linear(owner, Prefix + "v_proj"),
            loader.Linear(owner, Prefix + "o_proj"),
            loader.Has(Prefix + "q_norm.weight") ? loader.Parameter(owner, Prefix + "q_norm.weight") : null,
            loader.Has(Prefix + "k_norm.weight") ? loader.Parameter(owner, Prefix + "k_norm.weight") : null);
        return new AttentionBlock(Shape, weights, new KvCacheSite(Prefix.TrimEnd('.')), rope);
    }
}
