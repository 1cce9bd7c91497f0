using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The quantized form a plan and its calibration statistics define, before anything is exported: the same weight
/// units, shared group amax and input scales the export would write (<see cref="WeightUnits"/>, <see cref="ScaleGroups"/>),
/// applied as fake quantization.
/// </summary>
internal sealed class PlannedQuantization : IQuantizedForm
{
    private readonly Dictionary<string, List<(WeightUnit Unit, long ElementOffset)>> _units = new(StringComparer.Ordinal);
    private readonly Dictionary<string, float> _inputScales = new(StringComparer.Ordinal);
    private readonly ScaleGroups _scales;

    public PlannedQuantization(HFModel model, QuantPlan plan, CancellationToken cancellationToken)
    {
        var units = WeightUnits.From(model, plan);
        _scales = ScaleGroups.Compute(model, units, cancellationToken);
        foreach (var unit in units.Where(u => u.IsQuantized))
        {
            // The runner names fused experts by their 3-D parameter, Linears by module.
            string key = unit.Expert is not null && WeightUnits.IsSplit(unit.Module) ? unit.Source.Name : unit.Module.Name;
            if (!_units.TryGetValue(key, out var list)) _units[key] = list = [];
            list.Add((unit, unit.ByteOffset / DTypes.SizeOf(unit.DType)));
            if (unit.Decision == QuantDecision.Nvfp4 && unit.InputQuantizer is { } q)
                _inputScales[q] = GlobalScale.InputScale(_scales.InputAmax(unit), unit.OutputPrefix);
        }
        Scheme = plan.NeedsCalibration ? "W4A4" : "W4A16";
        Description = $"plan '{plan.RecipeName}' with {(model.Statistics is null ? "no activation statistics" : model.Statistics.Source)} (fake quantization)";
    }

    public string Description { get; }

    public string Scheme { get; }

    public Tensor Weight(string weightName, Tensor weight)
    {
        if (!_units.TryGetValue(weightName, out var units)) return weight;
        WeightArrays.Length(weightName, weight.shape); // units lie inside the weight, so their offsets and lengths fit an int too
        var values = weight.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        foreach (var (unit, offset) in units)
        {
            Nvfp4.FakeQuantizeInPlace(unit.OutputPrefix, values.AsSpan((int)offset, unit.Rows * unit.Cols), unit.Rows, unit.Cols,
                new Nvfp4Options { GlobalAmax = _scales.WeightAmax(unit) });
        }
        return Nvfp4Emulation.ToTensor(values, weight.shape, weight);
    }

    public float? InputScale(string inputQuantizerName) => _inputScales.TryGetValue(inputQuantizerName, out float s) ? s : null;
}
