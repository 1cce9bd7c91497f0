using System.Buffers;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The quantized form a plan and its calibration statistics define, before anything is exported, applied as fake
/// quantization with the values the export would write: NVFP4 units with the shared group amax and input scales of
/// <see cref="ScaleGroups"/>; FP8 units each with its own amax (a fused expert's gate and up halves with the amax of
/// their one <c>gate_up_proj</c> weight quantizer), dequantized from the very bytes <see cref="Fp8.Quantize"/> exports,
/// and <c>input_scale</c> = amax / 448 of their own input quantizer (pinned, or calibrated; a layer's experts share the
/// max); the KV cache as engines read it: FP8 with the
/// written <c>k_scale</c>/<c>v_scale</c>, or 1.0 where none is written (cast mode, layers the recipe left out).
/// </summary>
internal sealed class PlannedQuantization : IQuantizedForm
{
    private readonly Dictionary<string, List<(WeightUnit Unit, long ElementOffset)>> _units = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ActivationQuantizer> _activations = new(StringComparer.Ordinal);
    private readonly ScaleGroups _scales;
    // Built on first use: GPTQ's calibration needs this form's activations before the weights it will quantize by exist.
    private readonly Lazy<WeightQuantization> _weights;

    public PlannedQuantization(HFModel model, QuantPlan plan, CancellationToken cancellationToken)
    {
        var units = WeightUnits.From(model, plan);
        _scales = ScaleGroups.Compute(model, units, cancellationToken);
        _weights = new Lazy<WeightQuantization>(() => WeightQuantization.For(model, plan));
        var amaxes = ActivationAmaxes.Of(plan, model.Statistics);
        foreach (var unit in units.Where(u => u.IsQuantized))
        {
            // The runner names fused experts by their 3-D parameter, Linears by module.
            string key = unit.Expert is not null && WeightUnits.IsSplit(unit.Module) ? unit.Source.Name : unit.Module.Name;
            if (!_units.TryGetValue(key, out var list)) _units[key] = list = [];
            list.Add((unit, unit.ByteOffset / DTypes.SizeOf(unit.DType)));
            if (unit.InputQuantizer is not { } q || !unit.Decision.QuantizesInputs()) continue;
            _activations[q] = unit.Decision == QuantDecision.Fp8
                ? new Fp8Activations(Fp8.ActivationScale(_scales.InputAmax(unit), q))
                : new Nvfp4Activations(GlobalScale.InputScale(_scales.InputAmax(unit), unit.OutputPrefix));
        }
        if (plan.KvCache.Mode != KvCacheMode.None)
        {
            foreach (var layer in plan.KvCache.Layers)
            {
                foreach (var q in new[] { layer.Key, layer.Value })
                {
                    bool written = plan.KvCache.Mode == KvCacheMode.Fp8Scaled && q.Enabled;
                    // A scaled cache without a positive amax is refused here as the export refuses it.
                    _activations[q.Name] = new Fp8Activations(written ? Fp8.ActivationScale(amaxes.TryGet(q.Name, out float amax) ? amax : 0f, q.Name) : 1f);
                }
            }
        }
        Scheme = QuantScheme.Describe(plan.Formats, plan.KvCache.Mode != KvCacheMode.None);
        Description = $"plan '{plan.RecipeName}' with {(model.Statistics is null ? "no activation statistics" : model.Statistics.Source)} (fake quantization)";
    }

    public string Description { get; }

    public string Scheme { get; }

    public Tensor Weight(string weightName, Tensor weight)
    {
        if (!_units.TryGetValue(weightName, out var units)) return weight;
        WeightArrays.Length(weightName, weight.shape); // units lie inside the weight, so their offsets and lengths fit an int too
        var values = FloatTensors.Values(weight);
        foreach (var (unit, offset) in units)
        {
            var part = values.AsSpan((int)offset, unit.Rows * unit.Cols);
            if (unit.Decision == QuantDecision.Fp8)
                Fp8.FakeQuantizeWeightInPlace(unit.OutputPrefix + ".weight", part, unit.DType, unit.Rows, unit.Cols, new Fp8Options { Amax = _scales.WeightAmax(unit) });
            else
                FakeQuantizeNvfp4(unit, part);
        }
        return FloatTensors.ToTensor(values, weight.shape, weight);
    }

    /// <summary>The unit's values replaced by the dequantized bytes the export writes for it (same algorithm, same group amax).</summary>
    private void FakeQuantizeNvfp4(WeightUnit unit, Span<float> values)
    {
        int packedLength = Nvfp4.PackedLength(unit.Rows, unit.Cols), scaleLength = Nvfp4.ScaleLength(unit.Rows, unit.Cols);
        var packed = ArrayPool<byte>.Shared.Rent(packedLength);
        var scales = ArrayPool<byte>.Shared.Rent(scaleLength);
        try
        {
            float groupAmax = _scales.WeightAmax(unit);
            _weights.Value.Quantize(unit, MemoryMarshal.AsBytes(values), DType.F32, groupAmax, GlobalScaleOrder.Cuda,
                packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength));
            Nvfp4.Dequantize(packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength), _weights.Value.WeightScale2(unit, groupAmax, GlobalScaleOrder.Cuda),
                unit.Rows, unit.Cols, values);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
            ArrayPool<byte>.Shared.Return(scales);
        }
    }

    public ActivationQuantizer? Activation(string quantizerName) => _activations.GetValueOrDefault(quantizerName);

    /// <summary>
    /// The FP8 weight quantizer a unit is quantized by: its own Linear's, or for a fused expert's gate and up halves the
    /// one <c>gate_up_proj_weight_quantizers.e</c> over both (FP8 groups are not unified at export; FP8-FACTS.md).
    /// </summary>
}
