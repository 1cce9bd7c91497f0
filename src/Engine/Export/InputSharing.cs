using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;

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

    private InputSharing(Dictionary<string, int> inputOf) => _inputOf = inputOf;

    public static InputSharing Of(HFModel model)
    {
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

    /// <summary>An id of the tensor <paramref name="module"/> reads when other Linears read it too; null when it reads its own.</summary>
    public int? InputOf(string module) => _inputOf.TryGetValue(module, out int input) ? input : null;
}
