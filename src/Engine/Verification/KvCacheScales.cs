using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The KV cache a ModelOpt checkpoint declares (FP8-FACTS.md; ModelOpt quant_utils <c>postprocess_state_dict</c>,
/// convert_hf_config.py): <c>kv_cache_quant_algo</c> <c>FP8</c> or null, config.json <c>kv_cache_scheme</c>
/// {dynamic false, num_bits 8, type float} to match, and either no k/v scales (ModelOpt's default cast mode: engines
/// use 1.0) or, calibrated, <c>&lt;attn&gt;.k_proj.k_scale</c> and <c>&lt;attn&gt;.v_proj.v_scale</c> (F32 0-d,
/// amax/448) on every attention block of the language model that has k_proj and v_proj.
/// </summary>
internal static class KvCacheScales
{
    private const string KeyScale = "k_scale";
    private const string ValueScale = "v_scale";

    /// <summary>What ModelOpt writes as config.json's kv_cache_scheme for an FP8 KV cache.</summary>
    private static readonly JsonObject Fp8Scheme = new() { ["dynamic"] = false, ["num_bits"] = 8, ["type"] = "float" };

    public static bool IsScale(string parameter) => parameter is KeyScale or ValueScale;

    /// <summary>Reads and checks hf_quant_config's kv_cache_quant_algo; returns it when it is one this verifier knows.</summary>
    public static string? ReadAlgo(JsonObject section, CheckBuilder check)
    {
        var node = section["kv_cache_quant_algo"];
        if (node is null) return null;
        string? algo = node is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        if (algo == DeclaredQuantization.Fp8) return algo;
        check.Fail(VerificationIds.UnsupportedKvCacheQuantAlgo,
            $"kv_cache_quant_algo is {node.ToJsonString()}; ModelOpt's KV cache is \"{DeclaredQuantization.Fp8}\" or null, and engines refuse other values.");
        return null;
    }

    /// <summary>config.json's kv_cache_scheme must say what kv_cache_quant_algo says (convert_hf_quant_config_format).</summary>
    public static void CheckScheme(JsonObject quantConfig, string? algo, CheckBuilder check)
    {
        var scheme = quantConfig["kv_cache_scheme"];
        if (algo is null)
        {
            if (scheme is not null)
                check.Fail(VerificationIds.KvCacheSchemeMismatch,
                    $"quantization_config.kv_cache_scheme is {scheme.ToJsonString()} but hf_quant_config.json's kv_cache_quant_algo is null: vLLM would quantize a KV cache TensorRT-LLM leaves alone.");
        }
        else if (scheme is null)
        {
            // NVIDIA's published Qwen3.6 checkpoints (ModelOpt 0.44) lack it; vLLM then takes the KV format from hf_quant_config.json.
            check.Warn(VerificationIds.KvCacheSchemeMismatch,
                $"quantization_config has no kv_cache_scheme although kv_cache_quant_algo is {algo}; current ModelOpt writes {Fp8Scheme.ToJsonString()}.");
        }
        else if (!JsonNode.DeepEquals(scheme, Fp8Scheme))
        {
            check.Fail(VerificationIds.KvCacheSchemeMismatch,
                $"quantization_config.kv_cache_scheme is {scheme.ToJsonString()}; for kv_cache_quant_algo {algo} it is {Fp8Scheme.ToJsonString()}.");
        }
    }

    /// <summary>Checks every k/v scale tensor, and that the attention blocks have them all or none.</summary>
    public static void Check(IReadOnlyList<ModelModule> modules, IReadOnlyDictionary<string, TensorRef> tensors, DeclaredQuantization declared,
        CheckList checks)
    {
        var byName = modules.ToDictionary(m => m.Name, StringComparer.Ordinal);
        bool IsAttentionBlock(string parent) => byName.ContainsKey(parent + ".k_proj") && byName.ContainsKey(parent + ".v_proj");
        foreach (var module in modules)
        {
            foreach (var parameter in module.Parameters.Keys.Where(IsScale))
            {
                var check = checks.Module(module.Name);
                string name = $"{module.Name}.{parameter}";
                string expectedOwner = parameter == KeyScale ? "k_proj" : "v_proj";
                int dot = module.Name.LastIndexOf('.');
                if (dot < 0 || module.Name[(dot + 1)..] != expectedOwner || !IsAttentionBlock(module.Name[..dot]))
                {
                    check.Fail(VerificationIds.KvScaleMisplaced,
                        $"'{name}' is not on an attention block's {expectedOwner}: ModelOpt writes <attn>.k_proj.k_scale and <attn>.v_proj.v_scale only, and engines ignore or refuse a scale elsewhere.");
                    continue;
                }
                if (declared.KvCacheQuantAlgo is null)
                {
                    check.Fail(VerificationIds.KvScalesWithoutKvCache,
                        $"'{name}' is present but kv_cache_quant_algo is null: engines then keep an unquantized KV cache, so the scale is unused or refused.");
                    continue;
                }
                ScalarTensor.Read(module.Parameters, parameter, [], null, check, p => tensors[$"{module.Name}.{p}"]);
            }
        }
        if (declared.KvCacheQuantAlgo is not null) CheckComplete(modules, byName, IsAttentionBlock, checks);
    }

    /// <summary>
    /// Calibrated mode writes both scales for every attention block of the language model, cast mode none; a partial
    /// set leaves the other layers at scale 1.0 in the engines, silently wrong when the real amax is not 448.
    /// </summary>
    private static void CheckComplete(IReadOnlyList<ModelModule> modules, Dictionary<string, ModelModule> byName, Func<string, bool> isAttentionBlock,
        CheckList checks)
    {
        var blocks = modules.Where(m => m.Section == ModelSection.Text && ModuleClassifier.LastComponent(m.Name) == "k_proj")
            .Select(m => m.Name[..m.Name.LastIndexOf('.')]).Where(isAttentionBlock).ToList();
        var scaled = new Dictionary<string, (bool Key, bool Value)>(StringComparer.Ordinal);
        foreach (var block in blocks)
            scaled[block] = (byName[block + ".k_proj"].Parameters.ContainsKey(KeyScale), byName[block + ".v_proj"].Parameters.ContainsKey(ValueScale));
        int complete = scaled.Values.Count(s => s.Key && s.Value);
        if (!scaled.Values.Any(s => s.Key || s.Value) || complete == blocks.Count) return;
        foreach (var (block, has) in scaled.Where(kv => !(kv.Value.Key && kv.Value.Value)))
        {
            foreach (var (owner, parameter) in new[] { ("k_proj", KeyScale, has.Key), ("v_proj", ValueScale, has.Value) }
                         .Where(x => !x.Item3).Select(x => (x.Item1, x.Item2)))
                checks.Module($"{block}.{owner}").Fail(VerificationIds.KvScalesPartial,
                    $"Has no '{parameter}', but {complete} of {Text.Count(blocks.Count, "attention block")} carry both k_scale and v_scale: " +
                    "ModelOpt writes them for every attention block (calibrated KV cache) or for none (cast mode); engines use 1.0 where one is missing.");
        }
    }
}
