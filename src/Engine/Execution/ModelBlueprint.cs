using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// The text model as planned from the checkpoint's tensor names and shapes, its config and its family — every decoder
/// layer's blocks, the rotary embedding, the head — with no weight read. Planning fails (ForwardNotSupported) on a family
/// or a layer the engine cannot run, before any work starts.
/// </summary>
internal sealed record ModelBlueprint(TextLayout Layout, IReadOnlyList<DecoderLayerBlueprint> Layers, RotaryEmbedding Rope, NormStyle NormStyle, double Eps)
{
    public static ModelBlueprint Plan(HFModel model)
    {
        var (layout, layers, eps) = PlanLayers(model);
        int headDim = layers.Select(l => l.Mixer).OfType<AttentionBlueprint>().Select(a => a.Shape.HeadDim).FirstOrDefault(model.Config.HeadDim ?? 0);
        return new ModelBlueprint(layout, layers, RotaryEmbedding.FromConfig(model.Config, headDim), model.Spec.NormStyle, eps);
    }

    /// <summary>
    /// Every set of Linears of the decoder stack that read one tensor, from the layers' structure alone: a model whose
    /// forward cannot run for another reason (a rope type the engine lacks) still exports with the right shared scales.
    /// </summary>
    public static IEnumerable<SharedInput> SharedInputsOf(HFModel model) =>
        PlanLayers(model).Layers.SelectMany(l => l.Mixer.SharedInputs.Concat(l.FeedForward.SharedInputs));

    private static (TextLayout Layout, IReadOnlyList<DecoderLayerBlueprint> Layers, double Eps) PlanLayers(HFModel model)
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
        return (layout, layers, probe.Eps);
    }
}
