using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Model;

/// <summary>
/// Opens a checkpoint folder and builds its <see cref="HFModel"/>, checking it against its config; a checkpoint that is
/// already quantized is refused first.
/// </summary>
public static class ModelImporter
{
    public static HFModel Import(string folder)
    {
        folder = CheckpointReader.RequireFolder(folder);
        QuantizedCheckpoints.RefuseDeclared(folder);
        var checkpoint = CheckpointReader.Open(folder);
        try
        {
            QuantizedCheckpoints.RefuseStored(checkpoint);
            var config = checkpoint.Config;
            var resolution = ArchitectureRegistry.Resolve(config.Architecture, config.ModelType, config.TextModelType);
            var modules = InventoryBuilder.Build(checkpoint.Tensors.Values.Select(t => t.Info), resolution.Spec);
            var warnings = new List<string>();
            if (config.Architecture is null || !resolution.Spec.IsKnown) warnings.Add(resolution.How);
            CheckLayers(config, modules, warnings);
            CheckExperts(config, modules, warnings);
            return new HFModel(checkpoint, resolution, modules, warnings);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static void CheckLayers(ModelConfig config, IReadOnlyList<ModelModule> modules, List<string> warnings)
    {
        var layers = modules.Where(m => m.Section == ModelSection.Text && m.Layer is not null)
            .Select(m => m.Layer!.Value).Distinct().Count();
        if (config.LayerCount is { } declared && declared != layers)
            warnings.Add($"config.json says num_hidden_layers = {declared} but the checkpoint has tensors for {layers} decoder layers");
    }

    private static void CheckExperts(ModelConfig config, IReadOnlyList<ModelModule> modules, List<string> warnings)
    {
        if (config.ExpertCount is not { } declared || declared == 0) return;
        foreach (var fused in modules.Where(m => m.Kind == ModuleKind.FusedExperts && m.Section == ModelSection.Text))
        {
            if (fused.ExpertCount != declared)
                warnings.Add($"{fused.Name} holds {fused.ExpertCount} experts but config.json says {declared}");
        }
        var perExpert = modules.Where(m => m.Expert is not null && m.Kind == ModuleKind.Linear && m.Section == ModelSection.Text)
            .GroupBy(m => m.Layer);
        foreach (var layer in perExpert)
        {
            int found = layer.Select(m => m.Expert!.Value).Distinct().Count();
            if (found != declared)
                warnings.Add($"decoder layer {layer.Key} has {found} experts but config.json says {declared}");
        }
    }
}
