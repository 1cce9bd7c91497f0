using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// config.json's <c>quantization_config</c> of a MIXED_PRECISION checkpoint against hf_quant_config.json
/// (ModelOpt convert_hf_config.py <c>convert_hf_quant_config_format</c>): the same <c>quantized_layers</c>, and
/// <c>config_groups</c> that partition them, one group per distinct layer config whose targets are that config's
/// module names and whose args are that algorithm's.
/// </summary>
internal static class MixedPrecisionConfig
{
    /// <param name="hfLayers">hf_quant_config.json's quantized_layers node, or null when only config.json is there.</param>
    /// <param name="layers">The entries as the verifier reads them (from hf_quant_config.json when it exists).</param>
    public static void Check(JsonObject quantConfig, JsonNode? hfLayers, QuantizedLayers layers, CheckBuilder check)
    {
        var own = quantConfig["quantized_layers"];
        if (hfLayers is not null && !JsonNode.DeepEquals(own, hfLayers))
        {
            var mine = (own as JsonObject)?.Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal) ?? [];
            var theirs = (hfLayers as JsonObject)?.Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal) ?? [];
            var differing = mine.Intersect(theirs).Where(k => !JsonNode.DeepEquals(own![k], hfLayers[k])).ToList();
            check.Fail(VerificationIds.QuantizedLayersDiffer,
                $"quantization_config.quantized_layers is not hf_quant_config.json's: vLLM reads one, TensorRT-LLM and SGLang the other. " +
                $"Only in config.json: {Describe(mine.Except(theirs).ToList())}; only in hf_quant_config.json: {Describe(theirs.Except(mine).ToList())}; " +
                $"configured differently: {Describe(differing)}.");
        }
        if (quantConfig["config_groups"] is not JsonObject groups)
        {
            check.Fail(VerificationIds.ConfigGroupsInconsistent, "quantization_config.config_groups is missing: ModelOpt writes one group per distinct layer config.");
            return;
        }
        var covered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, node) in groups)
        {
            if (node is not JsonObject group || QuantConfigCheck.Strings(group["targets"]) is not { Count: > 0 } targets)
            {
                check.Fail(VerificationIds.ConfigGroupsInconsistent, $"config_groups.{name} has no list of target module names.");
                continue;
            }
            var unknown = targets.Where(t => !layers.Algos.ContainsKey(t)).ToList();
            var twice = targets.Where(t => !covered.Add(t)).ToList();
            var algos = targets.Where(layers.Algos.ContainsKey).Select(t => layers.Algos[t]).Distinct().ToList();
            if (unknown.Count > 0)
                check.Fail(VerificationIds.ConfigGroupsInconsistent, $"config_groups.{name} targets {Describe(unknown)}, which quantized_layers does not list.");
            if (twice.Count > 0)
                check.Fail(VerificationIds.ConfigGroupsInconsistent, $"config_groups.{name} targets {Describe(twice)}, which another group targets too.");
            if (algos.Count > 1)
                check.Fail(VerificationIds.ConfigGroupsInconsistent,
                    $"config_groups.{name} targets layers of {string.Join(", ", algos)}; ModelOpt writes one group per distinct layer config.");
            // ModelOpt 0.44 (NVIDIA's published Qwen3.6 configs) gave W4A16_NVFP4 groups NVFP4 input args; current ModelOpt
            // gives none. Consumers take each layer's format from quantized_layers, so both are accepted.
            else if (algos.Count == 1)
                QuantConfigCheck.CheckGroupArgs(group, algos[0], name, check, VerificationIds.ConfigGroupsInconsistent, weightOnlyInputs: true);
        }
        var uncovered = layers.Algos.Keys.Where(k => !covered.Contains(k)).ToList();
        if (uncovered.Count > 0)
            check.Fail(VerificationIds.ConfigGroupsInconsistent, $"No config group targets {Describe(uncovered)}, which quantized_layers lists.");
    }

    private static string Describe(IReadOnlyCollection<string> names) => names.Count == 0 ? "none" : Text.List(names);
}
