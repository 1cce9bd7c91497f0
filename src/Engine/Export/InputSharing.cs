using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// Which Linears of a model read the same input tensor, taken from the forward engine's plan of its decoder stack
/// (<see cref="ModelBlueprint.SharedInputsOf(HFModel)"/>; its structure only, not its rope): attention q/k/v, MLP and shared-expert gate/up, each expert's gate/up
/// (Mixtral w1/w3), the linear-attention input projections. Linears outside the decoder stack (vision tower, MTP head)
/// read inputs of their own: ModelOpt's dummy forward, which finds these sets, runs the text model only.
/// </summary>
public sealed class InputSharing
{
    private readonly Dictionary<string, int> _inputOf;

    private InputSharing(Dictionary<string, int> inputOf, string? note = null)
    {
        _inputOf = inputOf;
        Note = note;
    }

    /// <summary>Why the sets were inferred rather than known, for the export's warnings; null when known.</summary>
    public string? Note { get; }

    public static InputSharing Of(HFModel model)
    {
        if (!model.Spec.IsKnown) return ByMergedLayerNames(model);
        List<SharedInput> inputs;
        try
        {
            inputs = ModelBlueprint.SharedInputsOf(model).ToList();
        }
        catch (ModelOptException ex) when (ex.ErrorId == ExecutionErrors.ForwardNotSupported)
        {
            throw new ModelOptException(ExportErrorIds.InputSharingUnknown, ErrorKind.NotImplemented,
                $"Cannot tell which Linears of '{model.Name}' read the same input, so cannot give them the shared weight_scale_2 " +
                $"and input_scale engines need for their merged layers. {ex.Message}", model.Path, ex);
        }
        var inputOf = new Dictionary<string, int>(StringComparer.Ordinal);
        int index = 0;
        foreach (var input in inputs)
        {
            foreach (var module in input.Modules) inputOf[module] = index;
            index++;
        }
        return new InputSharing(inputOf);
    }

    /// <summary>
    /// A family the forward engine does not know (generic Linear discovery): its layer equations are unknown, so the
    /// sets are inferred from the consumers' merged layers by name (q/k/v, gate/up, in_proj_qkv/z, in_proj_b/a, each
    /// expert's gate/up), the sets those layers need to agree on to load correctly; said loudly in the warnings.
    /// </summary>
    private static InputSharing ByMergedLayerNames(HFModel model)
    {
        var merged = model.Modules.Select(m => (m.Name, Merged: MergedLayers.Of(m))).Where(x => x.Merged is not null).ToList();
        var index = merged.Select(x => x.Merged!).Distinct(StringComparer.Ordinal).Select((key, i) => (key, i))
            .ToDictionary(x => x.key, x => x.i, StringComparer.Ordinal);
        var inputOf = merged.ToDictionary(x => x.Name, x => index[x.Merged!], StringComparer.Ordinal);
        return new InputSharing(inputOf,
            $"'{model.Architecture ?? model.ModelType ?? model.Name}' is not a family the forward engine knows: Linears that share " +
            "weight_scale_2 and input_scale were inferred by name from the consumers' merged layers (q/k/v, gate/up, " +
            "in_proj_qkv/z, in_proj_b/a, each expert's gate/up), not from the model's equations; check the export with Test-QuantFormat.");
    }

    /// <summary>An id of the tensor <paramref name="module"/> reads when other Linears read it too; null when it reads its own.</summary>
    public int? InputOf(string module) => _inputOf.TryGetValue(module, out int input) ? input : null;
}
