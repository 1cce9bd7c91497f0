using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The quantized form an exported checkpoint holds, read back from disk: every NVFP4 weight dequantized from its packed
/// codes, block scales and global scale (ModelOpt or compressed-tensors names), fused experts reassembled from the
/// per-expert tensors, and input scales from the files. Measuring with it shows the export decodes to a working model.
/// </summary>
internal sealed class ExportedQuantization : IQuantizedForm
{
    private readonly CheckpointReader _export;

    public ExportedQuantization(CheckpointReader export)
    {
        _export = export;
        Scheme = export.Tensors.Keys.Any(k => k.EndsWith(".input_scale", StringComparison.Ordinal) || k.EndsWith(".input_global_scale", StringComparison.Ordinal))
            ? "W4A4" : "W4A16";
        Description = $"export '{export.Folder}' (dequantized from disk)";
    }

    public string Description { get; }

    public string Scheme { get; }

    public Tensor Weight(string weightName, Tensor weight)
    {
        WeightArrays.Length(weightName, weight.shape); // so the int shapes, offsets and lengths below cannot overflow
        var values = (float[]?)null;
        if (weight.dim() == 2)
        {
            if (TryDequantize(weightName, (int)weight.shape[0], (int)weight.shape[1]) is not { } linear) return weight;
            values = linear;
        }
        else
        {
            // Fused experts [E, 2I, H] (gate_up_proj) or [E, H, I] (down_proj), exported per expert.
            string container = weightName[..weightName.LastIndexOf('.')];
            bool gateUp = weightName.EndsWith(".gate_up_proj", StringComparison.Ordinal);
            int experts = (int)weight.shape[0], rows = (int)weight.shape[1], cols = (int)weight.shape[2];
            string[] parts = gateUp ? ["gate_proj", "up_proj"] : ["down_proj"];
            int partRows = rows / parts.Length;
            bool any = false;
            values = weight.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
            for (int e = 0; e < experts; e++)
            {
                for (int p = 0; p < parts.Length; p++)
                {
                    if (TryDequantize($"{container}.{e}.{parts[p]}", partRows, cols) is not { } part) continue;
                    part.CopyTo(values, ((long)e * rows + p * partRows) * cols);
                    any = true;
                }
            }
            if (!any) return weight;
        }
        return Nvfp4Emulation.ToTensor(values, weight.shape, weight);
    }

    public float? InputScale(string inputQuantizerName)
    {
        // <m>.input_quantizer -> <m>; fused <x>.gate_up_proj_input_quantizer -> expert 0's gate_proj (shared by all).
        string module = inputQuantizerName.EndsWith("_input_quantizer", StringComparison.Ordinal)
            ? inputQuantizerName[..inputQuantizerName.LastIndexOf('.')] + ".0." +
              (inputQuantizerName.EndsWith(".gate_up_proj_input_quantizer", StringComparison.Ordinal) ? "gate_proj" : "down_proj")
            : inputQuantizerName[..^".input_quantizer".Length];
        if (Scalar(module + ".input_scale") is { } scale) return scale;
        return Scalar(module + ".input_global_scale") is { } reciprocal ? 1f / reciprocal : null;
    }

    /// <summary>Dequantizes <c>&lt;module&gt;</c>'s NVFP4 weight, or null when the export keeps it unquantized.</summary>
    private float[]? TryDequantize(string module, int rows, int cols)
    {
        string packedName = _export.Tensors.ContainsKey(module + ".weight_packed") ? module + ".weight_packed" : module + ".weight";
        if (!_export.Tensors.TryGetValue(packedName, out var packed) || packed.Info.DType != DType.U8) return null;
        var scales = _export.GetTensor(module + ".weight_scale");
        float globalScale = Scalar(module + ".weight_scale_2") ?? 1f / Scalar(module + ".weight_global_scale")!.Value;
        var values = new float[WeightArrays.Length(packedName, rows, cols)];
        using var packedBytes = packed.File.Read(packed.Info);
        using var scaleBytes = scales.File.Read(scales.Info);
        Nvfp4.Dequantize(packedBytes.Span, scaleBytes.Span, globalScale, rows, cols, values);
        return values;
    }

    private float? Scalar(string name) =>
        _export.Tensors.TryGetValue(name, out var t) ? BitConverter.ToSingle(t.File.ToArray(t.Info)) : null;
}
