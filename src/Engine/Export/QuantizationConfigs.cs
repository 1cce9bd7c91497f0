using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The quantization metadata consumers read to pick their NVFP4/FP8 paths (shared/spec/checkpoint-contract.md and
/// shared/reference/consumers.md §1.1, §2.2): hf_quant_config.json and config.json's <c>quantization_config</c> for the
/// ModelOpt format, as ModelOpt writes them; config.json's compressed-tensors block for the other.
/// </summary>
public static class QuantizationConfigs
{
    /// <summary>hf_quant_config.json (ModelOpt's <c>get_quant_config</c>). vLLM recognises the file by
    /// <c>producer.name == "modelopt"</c>. One format: <c>quant_algo</c>, <c>kv_cache_quant_algo</c> (null allowed),
    /// <c>group_size</c> (NVFP4 forms) and <c>exclude_modules</c>; several: <c>MIXED_PRECISION</c> with every quantized
    /// layer's config in <c>quantized_layers</c>, and <c>exclude_modules</c> only when ModelOpt adds one (the MTP head).</summary>
    public static JsonObject HfQuantConfig(QuantizationSummary summary, string version)
    {
        var quantization = new JsonObject
        {
            ["quant_algo"] = summary.QuantAlgo,
            ["kv_cache_quant_algo"] = summary.KvCacheQuantAlgo,
        };
        if (summary.IsMixed)
            quantization["quantized_layers"] = new JsonObject(summary.Layers.Select(l => KeyValuePair.Create(l.Name, (JsonNode?)l.ToJson())));
        else if (QuantizedLayer.GroupSizeOf(summary.QuantAlgo) is { } groupSize)
            quantization["group_size"] = groupSize;
        if (summary.Exclude is { } exclude) quantization["exclude_modules"] = Strings(exclude);
        return new JsonObject { ["producer"] = Producer(version), ["quantization"] = quantization };
    }

    /// <summary>config.json <c>quantization_config</c> in ModelOpt's own form (convert_hf_config.py
    /// <c>convert_hf_quant_config_format</c>): one config group for a single format, targeting every Linear; for
    /// MIXED_PRECISION one group per distinct layer config in first-seen order, targeting its layers by name (sorted),
    /// followed by the full <c>quantized_layers</c>.</summary>
    public static JsonObject ModelOpt(QuantizationSummary summary, string version)
    {
        var groups = new JsonObject();
        var config = new JsonObject { ["config_groups"] = groups };
        if (summary.IsMixed)
        {
            int index = 0;
            foreach (var same in summary.Layers.GroupBy(l => l.ToJson().ToJsonString(), StringComparer.Ordinal))
            {
                var group = GroupArgs(same.First().QuantAlgo);
                group["targets"] = new JsonArray(same.Select(l => l.Name).Order(StringComparer.Ordinal).Select(n => (JsonNode)JsonValue.Create(n)!).ToArray());
                groups[$"group_{index++}"] = group;
            }
            config["quantized_layers"] = new JsonObject(summary.Layers.Select(l => KeyValuePair.Create(l.Name, (JsonNode?)l.ToJson())));
        }
        else
        {
            var group = GroupArgs(summary.QuantAlgo);
            group["targets"] = new JsonArray("Linear");
            groups["group_0"] = group;
        }
        config["ignore"] = Strings(summary.Exclude ?? []);
        config["quant_algo"] = summary.QuantAlgo;
        if (summary.KvCacheQuantAlgo == "FP8") config["kv_cache_scheme"] = new JsonObject { ["dynamic"] = false, ["num_bits"] = 8, ["type"] = "float" };
        config["producer"] = Producer(version);
        config["quant_method"] = "modelopt";
        return config;
    }

    /// <summary>A config group's <c>input_activations</c> (formats that quantize inputs) and <c>weights</c> (convert_hf_config.py
    /// <c>_quant_algo_to_group_config</c>).</summary>
    private static JsonObject GroupArgs(string quantAlgo)
    {
        JsonObject Args() => QuantizedLayer.GroupSizeOf(quantAlgo) is { } g
            ? new() { ["dynamic"] = false, ["num_bits"] = 4, ["type"] = "float", ["group_size"] = g }
            : new() { ["dynamic"] = false, ["num_bits"] = 8, ["type"] = "float" };
        var group = new JsonObject();
        if (quantAlgo != "W4A16_NVFP4") group["input_activations"] = Args();
        group["weights"] = Args();
        return group;
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
