using System.Buffers;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// Every tensor of the exported checkpoint, sorted by name, each with the code that produces its bytes: NVFP4 weights
/// (packed E2M1, E4M3 block scales, fp32 global scales, named per format), FP8 weights (<see cref="Fp8Tensors"/>), the KV
/// cache's k/v scales (<see cref="KvCacheScales"/>), split expert slices, and byte-for-byte copies of everything else. Built before the first byte is written, since headers come first.
/// </summary>
public sealed class OutputLayout
{
    private readonly Dictionary<string, byte[]> _pendingScales = new(StringComparer.Ordinal);
    private readonly List<string> _warnings = [];

    private OutputLayout() { }

    public IReadOnlyList<OutputTensor> Tensors { get; private set; } = [];

    /// <summary>Warnings raised while quantizing (zero tensors, saturation).</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    public static OutputLayout Build(HFModel model, QuantPlan plan, IReadOnlyList<WeightUnit> units, ScaleGroups scales, ExportOptions options)
    {
        var layout = new OutputLayout();
        var weights = WeightQuantization.For(model, plan);
        var tensors = new List<OutputTensor>();
        foreach (var unit in units)
        {
            tensors.AddRange(unit.Decision switch
            {
                QuantDecision.Fp8 => Fp8Tensors.For(unit, scales, options, layout._warnings),
                _ when unit.IsQuantized => layout.Quantized(unit, scales, weights, options),
                _ => [CopyUnit(unit)],
            });
        }
        tensors.AddRange(KvCacheScales.For(model, plan, options.Order));
        foreach (var mp in plan.Modules)
        {
            var m = mp.Module;
            bool weightsHandled = m.Kind is ModuleKind.Linear or ModuleKind.Router || WeightUnits.IsSplit(m);
            foreach (var (parameter, info) in m.Parameters)
            {
                if (weightsHandled && parameter is "weight" or "gate_up_proj" or "down_proj") continue;
                tensors.Add(OutputTensor.CopyWhole(model.Checkpoint.GetTensor(info.Name)));
            }
        }
        layout.Tensors = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        return layout;
    }

    private static OutputTensor CopyUnit(WeightUnit unit) =>
        OutputTensor.Copy(unit.OutputPrefix + ".weight", unit.Source, unit.ByteOffset, unit.ByteLength, [unit.Rows, unit.Cols]);

    /// <summary>The NVFP4 tensors of one unit (W4A4 or weight-only).</summary>
    private IEnumerable<OutputTensor> Quantized(WeightUnit unit, ScaleGroups scales, WeightQuantization weights, ExportOptions options)
    {
        bool ct = options.Format == ExportFormat.CompressedTensors;
        string p = unit.OutputPrefix;
        float groupAmax = scales.WeightAmax(unit);
        float weightScale2 = weights.WeightScale2(unit, groupAmax, options.Order);
        string packedName = ct ? $"{p}.weight_packed" : $"{p}.weight";
        yield return new OutputTensor(new TensorSpec(packedName, DType.U8, [unit.Rows, unit.Cols / 2]), w => WritePacked(w, unit, packedName, groupAmax, weights, options));
        yield return new OutputTensor(new TensorSpec($"{p}.weight_scale", DType.F8_E4M3, [unit.Rows, unit.Cols / Nvfp4.BlockSize]), w =>
        {
            w.WriteTensor($"{p}.weight_scale", _pendingScales[p]);
            _pendingScales.Remove(p);
        });
        yield return ct
            ? OutputTensor.Scalar($"{p}.weight_global_scale", 1f / weightScale2, oneElementVector: true)
            : OutputTensor.Scalar($"{p}.weight_scale_2", weightScale2, oneElementVector: false);
        if (unit.Decision != QuantDecision.Nvfp4) yield break;
        float inputScale = GlobalScale.InputScale(scales.InputAmax(unit), p, options.Order);
        yield return ct
            ? OutputTensor.Scalar($"{p}.input_global_scale", 1f / inputScale, oneElementVector: true)
            : OutputTensor.Scalar($"{p}.input_scale", inputScale, oneElementVector: false);
    }

    /// <summary>Quantizes one weight into pooled buffers, writes the packed codes and keeps the block scales for the
    /// <c>weight_scale</c> tensor, which sorts right after it.</summary>
    private void WritePacked(CheckpointWriter writer, WeightUnit unit, string name, float groupAmax, WeightQuantization weights, ExportOptions options)
    {
        int packedLength = Nvfp4.PackedLength(unit.Rows, unit.Cols);
        var packed = ArrayPool<byte>.Shared.Rent(packedLength);
        var blockScales = new byte[Nvfp4.ScaleLength(unit.Rows, unit.Cols)];
        try
        {
            using var weight = unit.Read();
            _warnings.AddRange(weights.Quantize(unit, weight.Span, unit.DType, groupAmax, options.Order, packed.AsSpan(0, packedLength), blockScales));
            writer.WriteTensor(name, packed.AsSpan(0, packedLength));
            _pendingScales[unit.OutputPrefix] = blockScales;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
        }
    }
}
