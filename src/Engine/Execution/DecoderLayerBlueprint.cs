using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Execution;

/// <summary>One decoder layer as planned: its mixer and feed-forward blueprints and the two norms around them.</summary>
internal sealed record DecoderLayerBlueprint(
    int Index, string Prefix, NormStyle NormStyle, double Eps, IMixerBlueprint Mixer, IFeedForwardBlueprint FeedForward)
{
    /// <summary>Checkpoint tensors a layer may hold that the forward pass does not need (older Llama exports).</summary>
    private static readonly string[] IgnoredSuffixes = [".rotary_emb.inv_freq"];

    public string InputNorm => Prefix + "input_layernorm.weight";

    public string PostNorm => Prefix + "post_attention_layernorm.weight";

    public IEnumerable<string> Tensors => new[] { InputNorm, PostNorm }.Concat(Mixer.Tensors).Concat(FeedForward.Tensors);

    public static DecoderLayerBlueprint Plan(LayerProbe probe, IEnumerable<string> checkpointTensors, string prefix, int index)
    {
        IMixerBlueprint mixer = (IMixerBlueprint?)AttentionBlueprint.TryPlan(probe, prefix, index)
            ?? DeltaNetBlueprint.TryPlan(probe, prefix)
            ?? throw probe.Fail($"decoder layer {index} has neither self_attn.q_proj nor linear_attn.out_proj.");
        IFeedForwardBlueprint feedForward = (IFeedForwardBlueprint?)MoeBlueprint.TryPlan(probe, prefix)
            ?? DenseMlpBlueprint.TryPlan(probe, prefix + "mlp.")
            ?? throw probe.Fail($"decoder layer {index} has neither an MoE router nor mlp.gate_proj.");
        var layer = new DecoderLayerBlueprint(index, prefix, probe.Spec.NormStyle, probe.Eps, mixer, feedForward);

        var used = layer.Tensors.ToHashSet(StringComparer.Ordinal);
        foreach (var name in used.Where(n => !probe.Has(n)))
            throw probe.Fail($"decoder layer {index} lacks '{name}'.");
        var unused = checkpointTensors
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && !used.Contains(n) && !IgnoredSuffixes.Any(n.EndsWith))
            .ToList();
        if (unused.Count > 0)
            throw probe.Fail($"decoder layer {index} holds tensors this engine does not know how to use: {string.Join(", ", unused.Take(5))}" +
                (unused.Count > 5 ? $" and {unused.Count - 5} more." : "."));
        return layer;
    }

    public DecoderLayer Build(WeightLoader loader, MaterializedWeights owner, RotaryEmbedding rope) => new(
        loader.Parameter(owner, InputNorm),
        loader.Parameter(owner, PostNorm),
        NormStyle,
        Eps,
        Mixer.Build(loader, owner, rope),
        FeedForward.Build(loader, owner));
}
