using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// The text model as planned from the checkpoint's tensor names and shapes, its config and its family — every decoder
/// layer's blocks, the rotary embedding, the head — with no weight read. Planning fails (ForwardNotSupported) on a family
/// or a layer the engine cannot run, before any work starts.
/// </summary>
internal sealed record ModelBlueprint(TextLayout Layout, IReadOnlyList<DecoderLayerBlueprint> Layers, RotaryEmbedding Rope, NormStyle NormStyle, double Eps)
{
    /// <summary>Every set of Linears of the decoder stack that read one tensor.</summary>
    public IEnumerable<SharedInput> SharedInputs => Layers.SelectMany(l => l.Mixer.SharedInputs.Concat(l.FeedForward.SharedInputs));

    public static ModelBlueprint Plan(HFModel model)
    {
        var checkpoint = model.Checkpoint;
        if (!model.Spec.IsKnown)
            throw ExecutionErrors.NotSupported(checkpoint.Folder,
                $"the family of architecture '{model.Architecture ?? "(none)"}' (model_type '{model.ModelType ?? "(none)"}') is not known, so its layer equations are not either.");
        var probe = new LayerProbe(checkpoint, model.Spec);
        var layout = TextLayout.Detect(checkpoint);
        int layerCount = model.Config.LayerCount ?? throw probe.Fail("config.json has no num_hidden_layers.");
        var names = checkpoint.Tensors.Keys.ToList();
        var layers = Enumerable.Range(0, layerCount)
            .Select(i => DecoderLayerBlueprint.Plan(probe, names, layout.Layer(i), i))
            .ToList();
        int headDim = layers.Select(l => l.Mixer).OfType<AttentionBlueprint>().Select(a => a.Shape.HeadDim).FirstOrDefault(model.Config.HeadDim ?? 0);
        return new ModelBlueprint(layout, layers, RotaryEmbedding.FromConfig(model.Config, headDim), model.Spec.NormStyle, probe.Eps);
    }
}
