using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The runner's weight transform during a layerwise GPTQ re-run: the solved layer's Linears get their dequantized GPTQ
/// weight; a fused experts parameter (<c>…experts.gate_up_proj</c> [E, 2I, H], <c>…experts.down_proj</c> [E, H, I]) gets
/// each solved expert's gate, up or down rows written into a copy. Every other weight passes unchanged.
/// </summary>
internal sealed class GptqWeights
{
    private readonly Dictionary<string, List<(WeightUnit Unit, float[] Values)>> _byWeight = new(StringComparer.Ordinal);

    public void Add(WeightUnit unit, float[] dequantized)
    {
        string weight = unit.Module.Kind == ModuleKind.FusedExperts
            ? $"{unit.Module.Name}.{(unit.Role == "down_proj" ? "down_proj" : "gate_up_proj")}"
            : unit.Module.Name;
        if (!_byWeight.TryGetValue(weight, out var parts)) _byWeight[weight] = parts = [];
        parts.Add((unit, dequantized));
    }

    public void Clear() => _byWeight.Clear();

    public Tensor Apply(string weightName, Tensor weight)
    {
        if (!_byWeight.TryGetValue(weightName, out var parts)) return weight;
        using var scope = NewDisposeScope();
        Tensor result = weight.clone();
        foreach (var (unit, values) in parts)
        {
            Tensor target = unit.Module.Kind == ModuleKind.FusedExperts
                ? result.select(0, unit.Expert!.Value).narrow(0, unit.Role == "up_proj" ? unit.Rows : 0, unit.Rows)
                : result;
            target.copy_(tensor(values, [unit.Rows, unit.Cols], ScalarType.Float32).to(weight.dtype, weight.device));
        }
        return result.MoveToOuterDisposeScope();
    }
}
