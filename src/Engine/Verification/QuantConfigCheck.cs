using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Reads the quantization a checkpoint declares and checks the config files field by field against the contract
/// (checkpoint-contract.md; the consumers' own requirements in consumers.md §1.1, §2.2, §6.7): config.json
/// <c>quantization_config</c> and, for the ModelOpt format, hf_quant_config.json.
/// </summary>
internal static class QuantConfigCheck
{
    public const string HfQuantConfigFileName = Model.QuantizedCheckpoints.HfQuantConfigFileName;
    private const string CompressedTensorsFormat = "nvfp4-pack-quantized";

    public static DeclaredQuantization Read(string folder, ModelConfig? config, CheckList checks)
    {
        var configCheck = checks.Get(CheckScope.Config, ModelConfig.FileName);
        var hfCheck = checks.Get(CheckScope.Config, HfQuantConfigFileName);
        hfCheck.Expected = "present in the ModelOpt layout only";
        var hfQuant = ReadHfQuantConfig(Path.Combine(folder, HfQuantConfigFileName), hfCheck);
        if (config is not null) CheckArchitectures(config, configCheck);
        var node = config?.Root["quantization_config"];
        if (node is not null and not JsonObject)
        {
            configCheck.Fail(VerificationIds.QuantConfigInvalid, "quantization_config is not a JSON object.");
            return DeclaredQuantization.None;
        }
        var quantConfig = node as JsonObject;
        string? method = ModelConfig.GetString(quantConfig, "quant_method");
        configCheck.Expected = "the source config plus quantization_config";
        configCheck.Found = method is null ? "no quantization_config" : $"quant_method '{method}'";

        if (method is not null && method.StartsWith("modelopt", StringComparison.OrdinalIgnoreCase))
            return ModelOpt(quantConfig, hfQuant, configCheck, hfCheck);
        if (method == "compressed-tensors")
            return CompressedTensors(quantConfig!, hfQuant, configCheck, hfCheck);
        if (method is not null)
        {
            configCheck.Fail(VerificationIds.QuantConfigInvalid,
                $"quantization_config.quant_method is '{method}'; an NVFP4 checkpoint says 'modelopt' or 'compressed-tensors'.");
            return DeclaredQuantization.None;
        }
        if (hfQuant is not null)
        {
            if (config is not null)
                configCheck.Fail(VerificationIds.QuantConfigMissing,
                    $"config.json has no quantization_config although {HfQuantConfigFileName} exists; vLLM reads config.json first and the contract writes both.");
            return ModelOpt(null, hfQuant, configCheck, hfCheck);
        }
        if (config is not null)
            checks.Get(CheckScope.Checkpoint, Path.GetFileName(folder)).Fail(VerificationIds.CheckpointNotQuantized,
                $"config.json has no quantization_config and there is no {HfQuantConfigFileName}: this is not a quantized checkpoint " +
                "(an export that quantized nothing, or the source folder itself).");
        return DeclaredQuantization.None;
    }

    private static JsonObject? ReadHfQuantConfig(string path, CheckBuilder check)
    {
        if (!File.Exists(path))
        {
            check.Found = "absent";
            return null;
        }
        check.Found = "present";
        try
        {
            if (JsonNode.Parse(File.ReadAllText(path)) is JsonObject root) return root;
            check.Fail(VerificationIds.QuantConfigInvalid, $"{HfQuantConfigFileName} is not a JSON object.");
        }
        catch (JsonException ex)
        {
            check.Fail(VerificationIds.QuantConfigInvalid, $"{HfQuantConfigFileName} is not valid JSON: {ex.Message}");
        }
        return null;
    }

    /// <summary>The engines pick the model class from <c>architectures</c>; a null one must be filled in on export.</summary>
    private static void CheckArchitectures(ModelConfig config, CheckBuilder check)
    {
        if (config.Architecture is null)
            check.Fail(VerificationIds.ArchitecturesMissing,
                "architectures is null, missing or empty: vLLM, SGLang and TensorRT-LLM pick the model class from it, so the export must fill it in from model_type.");
    }

    private static DeclaredQuantization ModelOpt(JsonObject? quantConfig, JsonObject? hfQuant, CheckBuilder configCheck, CheckBuilder hfCheck)
    {
        hfCheck.Expected = "producer modelopt; quant_algo, kv_cache_quant_algo, and group_size 16 and exclude_modules (NVFP4), exclude_modules (FP8) or quantized_layers (MIXED_PRECISION)";
        if (hfQuant is null && !hfCheck.Failed)
            hfCheck.Fail(VerificationIds.QuantConfigMissing,
                $"config.json says quant_method 'modelopt' but there is no {HfQuantConfigFileName}; TensorRT-LLM and SGLang read the format from it.");
        var section = hfQuant is null ? null : CheckHfQuantConfig(hfQuant, hfCheck);
        string? algo = ModelConfig.GetString(section, "quant_algo") ?? ModelConfig.GetString(quantConfig, "quant_algo");
        string? kvAlgo = section is null ? null : KvCacheScales.ReadAlgo(section, hfCheck);
        var layersNode = section is null ? quantConfig?["quantized_layers"] : section["quantized_layers"];
        // MIXED_PRECISION without a quantized_layers object (reported above) declares every Linear unquantized.
        var layers = algo == DeclaredQuantization.MixedPrecision
            ? QuantizedLayers.Read(layersNode as JsonObject ?? [], hfQuant is not null ? hfCheck : configCheck)
            : null;
        var exclude = Strings(section?["exclude_modules"]);
        var ignore = Strings(quantConfig?["ignore"]);
        if (quantConfig is not null)
        {
            CheckModelOptQuantConfig(quantConfig, algo, exclude, ignore, configCheck);
            if (section is not null) KvCacheScales.CheckScheme(quantConfig, kvAlgo, configCheck);
            if (layers is not null) MixedPrecisionConfig.Check(quantConfig, section is null ? null : layersNode, layers, configCheck);
        }
        var excluded = exclude ?? ignore ?? [];
        CheckAlgo(algo, hfQuant is not null ? hfCheck : configCheck);
        hfCheck.Note = configCheck.Note = $"{algo} with {Text.Count(excluded.Count, "exclusion entry", "exclusion entries")}"
            + (layers is null ? "" : $" and {Text.Count(layers.Algos.Count, "quantized_layers entry", "quantized_layers entries")}")
            + $", KV cache {kvAlgo ?? "unquantized"}";
        return new DeclaredQuantization(QuantFormat.ModelOpt, algo, algo == DeclaredQuantization.W4A16, new ExclusionList(excluded, QuantFormat.ModelOpt))
        {
            KvCacheQuantAlgo = kvAlgo,
            Layers = layers,
        };
    }

    /// <summary>
    /// The keys vLLM (and older SGLang) index directly for each quant_algo; their absence is a load error. ModelOpt
    /// writes group_size for the NVFP4 forms only, and for MIXED_PRECISION quantized_layers instead of a summarised
    /// exclude_modules (which then holds only the MTP entries, when there are any).
    /// </summary>
    private static JsonObject? CheckHfQuantConfig(JsonObject hfQuant, CheckBuilder check)
    {
        if (ModelConfig.GetString(hfQuant["producer"] as JsonObject, "name") != "modelopt")
            check.Fail(VerificationIds.QuantConfigInvalid,
                "producer.name is not 'modelopt'; vLLM recognises an hf_quant_config.json only by it.");
        if (hfQuant["quantization"] is not JsonObject section)
        {
            check.Fail(VerificationIds.QuantConfigInvalid, "hf_quant_config.json has no \"quantization\" object.");
            return null;
        }
        string? algo = ModelConfig.GetString(section, "quant_algo");
        string[] required = algo switch
        {
            DeclaredQuantization.Fp8 => ["quant_algo", "kv_cache_quant_algo", "exclude_modules"],
            DeclaredQuantization.MixedPrecision => ["quant_algo", "kv_cache_quant_algo", "quantized_layers"],
            _ => ["quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"],
        };
        foreach (var key in required.Where(k => !section.ContainsKey(k)))
            check.Fail(VerificationIds.QuantConfigInvalid, $"quantization.{key} is missing; vLLM and SGLang require the key for {algo ?? "this quant_algo"} (null or empty is allowed).");
        if (required.Contains("group_size") && section.ContainsKey("group_size") && ModelConfig.GetInt(section, "group_size") != 16)
            check.Fail(VerificationIds.QuantConfigInvalid, $"quantization.group_size is {section["group_size"]?.ToJsonString() ?? "null"}; NVFP4 blocks are 16.");
        if (section.ContainsKey("exclude_modules") && Strings(section["exclude_modules"]) is null)
            check.Fail(VerificationIds.QuantConfigInvalid, "quantization.exclude_modules is not a list of module names.");
        if (section.ContainsKey("quantized_layers") && section["quantized_layers"] is not JsonObject)
            check.Fail(VerificationIds.QuantConfigInvalid, "quantization.quantized_layers is not an object of module name to layer config.");
        return section;
    }

    private static void CheckModelOptQuantConfig(JsonObject quantConfig, string? algo, List<string>? exclude, List<string>? ignore, CheckBuilder check)
    {
        if (ModelConfig.GetString(quantConfig, "quant_algo") is { } own && own != algo)
            check.Fail(VerificationIds.QuantConfigInvalid, $"quantization_config.quant_algo is '{own}' but hf_quant_config.json says '{algo}'.");
        if (ignore is null)
            check.Fail(VerificationIds.QuantConfigInvalid, "quantization_config.ignore is missing or not a list; vLLM reads the exclusions from it.");
        else if (exclude is not null && !ignore.Order(StringComparer.Ordinal).SequenceEqual(exclude.Order(StringComparer.Ordinal)))
            check.Fail(VerificationIds.IgnoreDiffersFromExcludeModules,
                $"quantization_config.ignore ({Text.Count(ignore.Count, "entry", "entries")}) is not the same list as exclude_modules ({Text.Count(exclude.Count, "entry", "entries")}): " +
                $"vLLM reads one, TensorRT-LLM and SGLang the other. Only in ignore: {Text.List(ignore.Except(exclude).ToList())}; only in exclude_modules: {Text.List(exclude.Except(ignore).ToList())}.");
        if (ModelConfig.GetString(quantConfig["producer"] as JsonObject, "name") != "modelopt")
            check.Fail(VerificationIds.QuantConfigInvalid, "quantization_config.producer.name is not 'modelopt'.");
        if (algo == DeclaredQuantization.MixedPrecision) return; // one group per layer config: MixedPrecisionConfig
        var group = (quantConfig["config_groups"] as JsonObject)?["group_0"] as JsonObject;
        if (group is null)
        {
            check.Fail(VerificationIds.QuantConfigInvalid, "quantization_config.config_groups.group_0 is missing.");
            return;
        }
        CheckGroupArgs(group, algo, "group_0", check, VerificationIds.QuantConfigInvalid, weightOnlyInputs: false);
        CheckTargets(group, check);
    }

    /// <summary>
    /// A ModelOpt config group's quantization args for one quant_algo (convert_hf_config.py
    /// <c>_quant_algo_to_group_config</c>): FP8 8-bit float weights and inputs; NVFP4 4-bit float in blocks of 16,
    /// weights and inputs; W4A16_NVFP4 weights only.
    /// </summary>
    /// <param name="weightOnlyInputs">True to accept input_activations in a W4A16_NVFP4 group (see MixedPrecisionConfig).</param>
    public static void CheckGroupArgs(JsonObject group, string? algo, string groupName, CheckBuilder check, string id, bool weightOnlyInputs)
    {
        int bits = algo == DeclaredQuantization.Fp8 ? 8 : 4;
        int? groupSize = algo == DeclaredQuantization.Fp8 ? null : 16;
        CheckArgs(group["weights"] as JsonObject, $"{groupName}.weights", bits, groupSize, dynamic: false, strategy: null, check, id);
        if (algo != DeclaredQuantization.W4A16)
            CheckArgs(group["input_activations"] as JsonObject, $"{groupName}.input_activations", bits, groupSize, dynamic: false, strategy: null, check, id);
        else if (group["input_activations"] is not null && !weightOnlyInputs)
            check.Fail(id, $"config_groups.{groupName}.input_activations is present, but W4A16_NVFP4 quantizes weights only.");
    }

    private static DeclaredQuantization CompressedTensors(JsonObject quantConfig, JsonObject? hfQuant, CheckBuilder configCheck, CheckBuilder hfCheck)
    {
        if (hfQuant is not null)
            hfCheck.Fail(VerificationIds.QuantConfigInvalid,
                $"A compressed-tensors checkpoint has no {HfQuantConfigFileName}; TensorRT-LLM would read this one instead of config.json.");
        else
            hfCheck.Note = "absent, as the compressed-tensors layout wants";
        if (ModelConfig.GetString(quantConfig, "format") != CompressedTensorsFormat)
            configCheck.Fail(VerificationIds.QuantConfigInvalid,
                $"quantization_config.format is '{ModelConfig.GetString(quantConfig, "format")}'; vLLM needs '{CompressedTensorsFormat}'.");
        var groups = (quantConfig["config_groups"] as JsonObject)?.Select(kv => kv.Value).OfType<JsonObject>().ToList() ?? [];
        if (groups.Count != 1)
        {
            configCheck.Fail(VerificationIds.QuantConfigInvalid,
                $"quantization_config.config_groups has {Text.Count(groups.Count, "group")}; an NVFP4 export has exactly one, targeting Linear.");
            return new DeclaredQuantization(QuantFormat.CompressedTensors, null, false, ExclusionList.Empty);
        }
        var group = groups[0];
        CheckArgs(group["weights"] as JsonObject, "weights", 4, 16, dynamic: false, strategy: "tensor_group", configCheck, VerificationIds.QuantConfigInvalid);
        bool weightOnly = group["input_activations"] is null;
        if (!weightOnly) CheckArgs(group["input_activations"] as JsonObject, "input_activations", 4, 16, dynamic: "local", strategy: "tensor_group", configCheck, VerificationIds.QuantConfigInvalid);
        CheckTargets(group, configCheck);
        var ignore = Strings(quantConfig["ignore"]);
        if (ignore is null)
            configCheck.Fail(VerificationIds.QuantConfigInvalid, "quantization_config.ignore is missing or not a list of names.");
        string algo = weightOnly ? DeclaredQuantization.W4A16 : DeclaredQuantization.Nvfp4;
        configCheck.Note = $"nvfp4-pack-quantized ({(weightOnly ? "weight-only" : "W4A4")}) with {Text.Count(ignore?.Count ?? 0, "ignore entry", "ignore entries")}";
        return new DeclaredQuantization(QuantFormat.CompressedTensors, algo, weightOnly, new ExclusionList(ignore ?? [], QuantFormat.CompressedTensors));
    }

    /// <summary>Quantization args: <paramref name="bits"/>-bit float, in blocks of <paramref name="groupSize"/> when given (compressed-tensors adds strategy and symmetry).</summary>
    private static void CheckArgs(JsonObject? args, string name, int bits, int? groupSize, object dynamic, string? strategy, CheckBuilder check, string id)
    {
        if (args is null)
        {
            check.Fail(id, $"config group {name} is missing.");
            return;
        }
        var wrong = new List<string>();
        if (ModelConfig.GetInt(args, "num_bits") != bits) wrong.Add($"num_bits {bits}");
        if (ModelConfig.GetString(args, "type") != "float") wrong.Add("type \"float\"");
        if (groupSize is not null && ModelConfig.GetInt(args, "group_size") != groupSize) wrong.Add($"group_size {groupSize}");
        if (strategy is not null && ModelConfig.GetString(args, "strategy") != strategy) wrong.Add($"strategy \"{strategy}\"");
        if (strategy is not null && ModelConfig.GetBool(args, "symmetric") != true) wrong.Add("symmetric true");
        bool dynamicOk = dynamic is string s ? ModelConfig.GetString(args, "dynamic") == s : ModelConfig.GetBool(args, "dynamic") == (bool)dynamic;
        if (!dynamicOk) wrong.Add($"dynamic {JsonSerializer.Serialize(dynamic)}");
        if (wrong.Count > 0)
            check.Fail(id, $"config group {name} is {args.ToJsonString()}; it needs {string.Join(", ", wrong)}.");
    }

    private static void CheckTargets(JsonObject group, CheckBuilder check)
    {
        if (Strings(group["targets"]) is not { } targets || !targets.Contains("Linear"))
            check.Fail(VerificationIds.QuantConfigInvalid, "the config group does not target [\"Linear\"].");
    }

    private static void CheckAlgo(string? algo, CheckBuilder check)
    {
        if (algo is not (DeclaredQuantization.Nvfp4 or DeclaredQuantization.W4A16 or DeclaredQuantization.Fp8 or DeclaredQuantization.MixedPrecision))
            check.Fail(VerificationIds.UnsupportedQuantAlgo,
                $"quant_algo is '{algo ?? "(none)"}'; this verifier checks NVFP4, W4A16_NVFP4, FP8 and MIXED_PRECISION checkpoints only.");
    }

    /// <summary>A JSON array of strings, or null when the node is missing or anything else.</summary>
    public static List<string>? Strings(JsonNode? node) =>
        node is JsonArray array && array.All(n => n is JsonValue v && v.TryGetValue(out string? _))
            ? array.Select(n => n!.GetValue<string>()).ToList()
            : null;
}
