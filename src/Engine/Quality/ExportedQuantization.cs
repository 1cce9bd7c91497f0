using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The quantized form an exported checkpoint holds, read back from disk: every NVFP4 weight dequantized from its packed
/// codes, block scales and global scale (ModelOpt or compressed-tensors names), every FP8 weight from its F8_E4M3 codes
/// and <c>weight_scale</c>, fused experts reassembled from the per-expert tensors, input scales from the files (NVFP4 or
/// FP8 by the module's weight), and an FP8 KV cache (<c>kv_cache_quant_algo: FP8</c>, or a <c>kv_cache_scheme</c>) with
/// each attention block's <c>k_proj.k_scale</c>/<c>v_proj.v_scale</c>, 1.0 where none is written, as engines read it.
/// Measuring with it shows the export decodes to a working model.
/// </summary>
internal sealed class ExportedQuantization : IQuantizedForm
{
    private readonly CheckpointReader _export;
    private readonly bool _fp8KvCache;

    public ExportedQuantization(CheckpointReader export)
    {
        _export = export;
        _fp8KvCache = DeclaresFp8KvCache(export);
        Scheme = QuantScheme.Describe(QuantizedWeights(export).Select(w => Algorithm(w.Module, w.DType)), _fp8KvCache);
        Description = $"export '{export.Folder}' (dequantized from disk)";
    }

    public string Description { get; }

    public string Scheme { get; }

    /// <summary>Every quantized weight of an export: NVFP4 packed bytes (U8) or FP8 codes, with its module.</summary>
    public static IEnumerable<(string Module, DType DType)> QuantizedWeights(CheckpointReader export) =>
        export.Tensors.Values
            .Where(t => t.Info.DType is DType.U8 or DType.F8_E4M3
                && (t.Name.EndsWith(".weight", StringComparison.Ordinal) || t.Name.EndsWith(".weight_packed", StringComparison.Ordinal)))
            .Select(t => (t.Name[..t.Name.LastIndexOf('.')], t.Info.DType));

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
            values = FloatTensors.Values(weight);
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
        return FloatTensors.ToTensor(values, weight.shape, weight);
    }

    public ActivationQuantizer? Activation(string quantizerName)
    {
        if (KvCacheScaleName(quantizerName) is { } scaleName)
            return _fp8KvCache ? new Fp8Activations(Scalar(scaleName) ?? 1f) : null;
        // <m>.input_quantizer -> <m>; fused <x>.gate_up_proj_input_quantizer -> expert 0's gate_proj (shared by all).
        string module = quantizerName.EndsWith("_input_quantizer", StringComparison.Ordinal)
            ? quantizerName[..quantizerName.LastIndexOf('.')] + ".0." +
              (quantizerName.EndsWith(".gate_up_proj_input_quantizer", StringComparison.Ordinal) ? "gate_proj" : "down_proj")
            : quantizerName[..^".input_quantizer".Length];
        if (Scalar(module + ".input_scale") is { } scale)
            return _export.Tensors.TryGetValue(module + ".weight", out var w) && w.Info.DType == DType.F8_E4M3
                ? new Fp8Activations(scale)
                : new Nvfp4Activations(scale);
        return Scalar(module + ".input_global_scale") is { } reciprocal ? new Nvfp4Activations(1f / reciprocal) : null;
    }

    /// <summary>ModelOpt's name for an attention block's KV scale (<c>&lt;a&gt;.k_bmm_quantizer</c> → <c>&lt;a&gt;.k_proj.k_scale</c>), or null.</summary>
    private static string? KvCacheScaleName(string quantizerName)
    {
        foreach (var kind in new[] { "k", "v" })
        {
            string suffix = $".{kind}_bmm_quantizer";
            if (quantizerName.EndsWith(suffix, StringComparison.Ordinal))
                return $"{quantizerName[..^suffix.Length]}.{kind}_proj.{kind}_scale";
        }
        return null;
    }

    /// <summary><c>NVFP4</c> (packed weights with an input scale), <c>W4A16_NVFP4</c> (without) or <c>FP8</c>.</summary>
    private string Algorithm(string module, DType dtype) =>
        dtype == DType.F8_E4M3 ? "FP8"
        : _export.Tensors.ContainsKey(module + ".input_scale") || _export.Tensors.ContainsKey(module + ".input_global_scale") ? "NVFP4"
        : "W4A16_NVFP4";

    /// <summary>Dequantizes <c>&lt;module&gt;</c>'s NVFP4 or FP8 weight, or null when the export keeps it unquantized.</summary>
    private float[]? TryDequantize(string module, int rows, int cols)
    {
        string packedName = _export.Tensors.ContainsKey(module + ".weight_packed") ? module + ".weight_packed" : module + ".weight";
        if (!_export.Tensors.TryGetValue(packedName, out var packed) || packed.Info.DType is not (DType.U8 or DType.F8_E4M3)) return null;
        var values = new float[WeightArrays.Length(packedName, rows, cols)];
        using var packedBytes = packed.File.Read(packed.Info);
        if (packed.Info.DType == DType.F8_E4M3)
        {
            Fp8.Dequantize(packedBytes.Span, Scalar(module + ".weight_scale")!.Value, values);
            return values;
        }
        var scales = _export.GetTensor(module + ".weight_scale");
        float globalScale = Scalar(module + ".weight_scale_2") ?? 1f / Scalar(module + ".weight_global_scale")!.Value;
        using var scaleBytes = scales.File.Read(scales.Info);
        Nvfp4.Dequantize(packedBytes.Span, scaleBytes.Span, globalScale, rows, cols, values);
        return values;
    }

    private float? Scalar(string name) =>
        _export.Tensors.TryGetValue(name, out var t) ? BitConverter.ToSingle(t.File.ToArray(t.Info)) : null;

    /// <summary>
    /// ModelOpt's <c>kv_cache_quant_algo: FP8</c> in hf_quant_config.json, or a <c>kv_cache_scheme</c> in config.json's
    /// <c>quantization_config</c> (what vLLM reads): engines then keep an FP8 KV cache in every attention layer.
    /// </summary>
    private static bool DeclaresFp8KvCache(CheckpointReader export)
    {
        if (export.Config.Root["quantization_config"] is JsonObject config && config["kv_cache_scheme"] is JsonObject) return true;
        string path = Path.Combine(export.Folder, QuantizedCheckpoints.HfQuantConfigFileName);
        if (!File.Exists(path)) return false;
        try
        {
            var quantization = (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["quantization"] as JsonObject;
            return ModelConfig.GetString(quantization, "kv_cache_quant_algo") == "FP8";
        }
        catch (JsonException e)
        {
            throw new ModelOptException(ErrorIds.ConfigInvalid, ErrorKind.InvalidData, $"'{path}' is not valid JSON: {e.Message}", path);
        }
    }
}
