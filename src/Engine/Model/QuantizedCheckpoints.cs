using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Model;

/// <summary>
/// Recognises a checkpoint that is already quantized, so that importing it fails at once, naming its format, instead
/// of deep inside planning or export. Quantizing needs the BF16/F16/F32 weights; a quantized checkpoint holds codes and
/// scales. The error is <see cref="ErrorKind.InvalidOperation"/>: the checkpoint is well formed (not corrupt data), but
/// quantizing it again is not an operation its state allows.
/// </summary>
public static class QuantizedCheckpoints
{
    public const string CheckpointAlreadyQuantized = nameof(CheckpointAlreadyQuantized);

    public const string HfQuantConfigFileName = "hf_quant_config.json";

    /// <summary>Dtypes quantized weights are stored in (NVFP4 packs E2M1 pairs in U8; compressed-tensors packs int4 in I32).</summary>
    private static readonly DType[] QuantizedDTypes = [DType.U8, DType.F8_E4M3, DType.F8_E5M2, DType.I8, DType.I32];

    /// <summary>Companion tensors of quantized weights, by format.</summary>
    private static readonly string[] ScaleSuffixes =
        [".weight_scale_inv", ".weight_scale_2", ".weight_global_scale", ".weight_scale", ".input_scale", ".input_global_scale"];

    /// <summary>Refuses a folder whose config files declare a quantization; runs before any shard is opened.</summary>
    public static void RefuseDeclared(string folder)
    {
        string hfQuant = Path.Combine(folder, HfQuantConfigFileName);
        if (File.Exists(hfQuant)) throw Refused(folder, DescribeHfQuantConfig(hfQuant), HfQuantConfigFileName, hfQuant);
        var config = ModelConfig.Load(Path.Combine(folder, ModelConfig.FileName));
        var declared = config.Root["quantization_config"] ?? config.Text["quantization_config"];
        if (declared is not null)
            throw Refused(folder, DescribeQuantizationConfig(declared as JsonObject), "config.json quantization_config", config.Path);
    }

    /// <summary>Refuses a checkpoint whose weights are stored quantized next to their scales, declared or not.</summary>
    public static void RefuseStored(CheckpointReader checkpoint)
    {
        foreach (var (name, tensor) in checkpoint.Tensors)
        {
            string? module = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length]
                : name.EndsWith(".weight_packed", StringComparison.Ordinal) ? name[..^".weight_packed".Length]
                : null;
            if (module is null || !QuantizedDTypes.Contains(tensor.Info.DType)) continue;
            var scales = ScaleSuffixes.Where(s => checkpoint.Tensors.ContainsKey(module + s)).ToList();
            if (scales.Count == 0) continue;
            string evidence = $"'{name}' is {tensor.Info.DType} next to {string.Join(", ", scales.Select(s => s[1..]))}";
            throw Refused(checkpoint.Folder, DescribeStored(name, tensor.Info.DType, scales), evidence, tensor.File.Path);
        }
    }

    private static string DescribeStored(string weight, DType dtype, List<string> scales) => (dtype, scales) switch
    {
        _ when scales.Contains(".weight_scale_inv") => "block-FP8 (per-block weight_scale_inv, as the DeepSeek-V3/R1 and Qwen3-FP8 releases)",
        (DType.U8, _) when scales.Contains(".weight_scale_2") => "ModelOpt NVFP4",
        (DType.U8, _) when scales.Contains(".weight_global_scale") => "compressed-tensors NVFP4",
        (DType.I32, _) when weight.EndsWith(".weight_packed", StringComparison.Ordinal) => "compressed-tensors packed integers (e.g. W4A16)",
        (DType.F8_E4M3 or DType.F8_E5M2, _) => "FP8 (per-tensor or per-channel weight_scale)",
        (DType.I8, _) => "INT8",
        _ => $"{dtype} weights with scales",
    };

    private static string DescribeHfQuantConfig(string path)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
            string producer = ModelConfig.GetString(root?["producer"] as JsonObject, "name") ?? "ModelOpt";
            string? algo = ModelConfig.GetString(root?["quantization"] as JsonObject, "quant_algo");
            return $"{(producer == "modelopt" ? "ModelOpt" : producer)} {algo ?? "(no quant_algo)"}";
        }
        catch (JsonException)
        {
            return "ModelOpt (unreadable hf_quant_config.json)";
        }
    }

    private static string DescribeQuantizationConfig(JsonObject? config)
    {
        string? method = ModelConfig.GetString(config, "quant_method");
        return method?.ToLowerInvariant() switch
        {
            null => "an unnamed method (no quant_method)",
            "modelopt" or "modelopt_fp4" => $"ModelOpt {ModelConfig.GetString(config, "quant_algo") ?? method}",
            "compressed-tensors" => $"compressed-tensors {CompressedTensorsScheme(config!)}",
            "fp8" when config!["weight_block_size"] is JsonArray block => $"block-FP8 ({string.Join("x", block)} blocks, weight_scale_inv)",
            "fp8" => "FP8",
            "gptq" or "awq" => $"{method.ToUpperInvariant()} {ModelConfig.GetInt(config, "bits")?.ToString() ?? "?"}-bit",
            "mxfp4" => "MXFP4",
            "bitsandbytes" => $"bitsandbytes {(ModelConfig.GetBool(config, "load_in_4bit") == true ? "4-bit" : "8-bit")}",
            _ => $"'{method}'",
        };
    }

    /// <summary>NVFP4, W4A16 (packed integers), FP8, INT8 or the format string, from the top-level or first group's format.</summary>
    private static string CompressedTensorsScheme(JsonObject config)
    {
        string? format = ModelConfig.GetString(config, "format")
            ?? (config["config_groups"] as JsonObject)?.Select(g => ModelConfig.GetString(g.Value as JsonObject, "format")).FirstOrDefault(f => f is not null);
        return format switch
        {
            "nvfp4-pack-quantized" => "NVFP4",
            "pack-quantized" => "W4A16 (packed integers)",
            "float-quantized" => "FP8",
            "int-quantized" => "INT8",
            null => "(no format)",
            _ => $"'{format}'",
        };
    }

    private static ModelOptException Refused(string folder, string format, string evidence, string path) =>
        new(CheckpointAlreadyQuantized, ErrorKind.InvalidOperation,
            $"'{folder}' is already quantized: {format} ({evidence}). ModelOptPS quantizes BF16, F16 or F32 checkpoints; " +
            "import the unquantized checkpoint this one was made from.", path);
}
