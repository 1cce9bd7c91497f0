using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The quantization metadata consumers read to pick their NVFP4 path (shared/spec/checkpoint-contract.md and
/// shared/reference/consumers.md §1.1, §2.2): hf_quant_config.json and config.json's <c>quantization_config</c> for the
/// ModelOpt format; config.json's compressed-tensors block for the other.
/// </summary>
public static class QuantizationConfigs
{
    /// <summary>hf_quant_config.json. vLLM recognises the file by <c>producer.name == "modelopt"</c> and requires the keys
    /// <c>quant_algo</c>, <c>kv_cache_quant_algo</c> (null allowed), <c>group_size</c> and <c>exclude_modules</c>.</summary>
    public static JsonObject HfQuantConfig(string quantAlgo, IReadOnlyList<string> exclude, string version) => new()
    {
        ["producer"] = Producer(version),
        ["quantization"] = new JsonObject
        {
            ["quant_algo"] = quantAlgo,
            ["kv_cache_quant_algo"] = null,
            ["group_size"] = 16,
            ["exclude_modules"] = Strings(exclude),
        },
    };

    /// <summary>config.json <c>quantization_config</c> in ModelOpt's own form.</summary>
    public static JsonObject ModelOpt(string quantAlgo, IReadOnlyList<string> exclude, string version)
    {
        var group = new JsonObject();
        if (quantAlgo == "NVFP4") group["input_activations"] = Nvfp4Args();
        group["weights"] = Nvfp4Args();
        group["targets"] = new JsonArray("Linear");
        return new JsonObject
        {
            ["config_groups"] = new JsonObject { ["group_0"] = group },
            ["ignore"] = Strings(exclude),
            ["quant_algo"] = quantAlgo,
            ["producer"] = Producer(version),
            ["quant_method"] = "modelopt",
        };
    }

    /// <summary>config.json <c>quantization_config</c> for compressed-tensors <c>nvfp4-pack-quantized</c>.</summary>
    public static JsonObject CompressedTensors(bool quantizeInputs, IReadOnlyList<string> ignore)
    {
        var group = new JsonObject
        {
            ["targets"] = new JsonArray("Linear"),
            ["format"] = "nvfp4-pack-quantized",
            ["weights"] = TensorGroupArgs(dynamic: false),
            ["input_activations"] = quantizeInputs ? TensorGroupArgs(dynamic: "local") : null,
            ["output_activations"] = null,
        };
        return new JsonObject
        {
            ["config_groups"] = new JsonObject { ["group_0"] = group },
            ["format"] = "nvfp4-pack-quantized",
            ["quant_method"] = "compressed-tensors",
            ["quantization_status"] = "compressed",
            ["ignore"] = Strings(ignore),
            ["kv_cache_scheme"] = null,
        };
    }

    private static JsonObject Nvfp4Args() => new() { ["dynamic"] = false, ["num_bits"] = 4, ["type"] = "float", ["group_size"] = 16 };

    private static JsonObject TensorGroupArgs(JsonNode? dynamic) => new()
    {
        ["num_bits"] = 4,
        ["type"] = "float",
        ["strategy"] = "tensor_group",
        ["group_size"] = 16,
        ["symmetric"] = true,
        ["dynamic"] = dynamic,
        ["observer"] = "static_minmax",
    };

    private static JsonObject Producer(string version) => new() { ["name"] = "modelopt", ["version"] = version };

    private static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray());
}
