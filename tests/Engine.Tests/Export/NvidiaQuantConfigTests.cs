using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ModelOptPS.Engine.Export;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// The presets that reproduce NVIDIA's Qwen3.5/3.6 checkpoints, exported from the generated Qwen3.5 fixtures, give config
/// files that follow NVIDIA's published ones pattern by pattern (TestData/NvidiaQuantConfigs, sources in its README):
/// the same per-layer algorithms, exclusions, keys and config groups. Where the published file was written by an older
/// ModelOpt than the rules followed here (ModelOpt a2fbac7), the test says what changed upstream.
/// </summary>
public partial class NvidiaQuantConfigTests : IDisposable
{
    private const string MixedPreset = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";
    private const string ExpertsOnlyPreset = "NVFP4_EXPERTS_ONLY_KV_FP8_CAST";

    /// <summary>What current ModelOpt appends for the MTP head (sorted prefixes; 0.44 wrote them the other way round).</summary>
    private static readonly string[] MtpExclusions = ["mtp*", "mtp.layers.0*"];

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [GeneratedRegex(@"\.layers\.\d+\.")]
    private static partial Regex LayerIndex();

    private static string Pattern(string name) => LayerIndex().Replace(name, ".layers.N.");

    private static JsonNode Reference(string model) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "NvidiaQuantConfigs", model + ".json")))!;

    private static List<string> Strings(JsonNode? array) => array!.AsArray().Select(n => n!.GetValue<string>()).ToList();

    private static List<string> Keys(JsonNode node) => node.AsObject().Select(p => p.Key).ToList();

    private (ExportResult Result, JsonObject Hf, JsonObject Config) Export(string family, string preset)
    {
        using var model = ExportFixture.Planned(_tmp, family, preset);
        var result = ExportFixture.Export(model, _tmp);
        var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "hf_quant_config.json")))!["quantization"]!.AsObject();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!["quantization_config"]!.AsObject();
        return (result, hf, config);
    }

    [Theory]
    [InlineData("qwen3_5_moe", "nvidia--Qwen3.6-35B-A3B-NVFP4")]
    [InlineData("qwen3_5", "nvidia--Qwen3.6-27B-NVFP4")]
    public void MixedPrecisionHfQuantConfigFollowsNvidia(string family, string reference)
    {
        var expected = Reference(reference)["hf_quant_config"]!;
        var (result, hf, _) = Export(family, MixedPreset);

        Assert.Equal(Strings(expected["keys"]), Keys(hf));
        Assert.Equal("MIXED_PRECISION", hf["quant_algo"]!.GetValue<string>());
        Assert.Equal("MIXED_PRECISION", result.QuantAlgo);
        Assert.Equal("FP8", hf["kv_cache_quant_algo"]!.GetValue<string>());
        Assert.Equal("FP8", result.KvCacheQuantAlgo);
        var layers = hf["quantized_layers"]!.AsObject()
            .Select(p => (Pattern(p.Key), p.Value!.ToJsonString())).ToHashSet();
        var published = expected["quantized_layers"]!.AsArray()
            .Select(e => (e!["pattern"]!.GetValue<string>(), e["config"]!.ToJsonString())).ToHashSet();
        Assert.Equal(published.Order(), layers.Order());
        // No exclusion summary in MIXED_PRECISION: only the MTP head, as _add_mtp_exclusions appends it.
        Assert.Equal(Strings(expected["exclude_modules"]).Order(StringComparer.Ordinal), Strings(hf["exclude_modules"]));
        Assert.Equal(MtpExclusions, Strings(hf["exclude_modules"]));
        Assert.Equal(MtpExclusions, result.ExcludedModules);
    }

    /// <summary>
    /// config.json against the 27B file, written by ModelOpt 0.45 (the converter followed here). The 35B file's was
    /// written by 0.37, whose converter still gave W4A16 groups input_activations and wrote no kv_cache_scheme; its
    /// groups' targets are compared, which do not depend on that.
    /// </summary>
    [Theory]
    [InlineData("qwen3_5_moe", "nvidia--Qwen3.6-35B-A3B-NVFP4", false)]
    [InlineData("qwen3_5", "nvidia--Qwen3.6-27B-NVFP4", true)]
    public void MixedPrecisionConfigJsonFollowsNvidia(string family, string reference, bool currentConverter)
    {
        var expected = Reference(reference)["config_json"]!;
        var current = Reference("nvidia--Qwen3.6-27B-NVFP4")["config_json"]!;
        var (_, hf, config) = Export(family, MixedPreset);

        Assert.Equal(Strings(current["keys"]), Keys(config));
        Assert.Equal("modelopt", config["quant_method"]!.GetValue<string>());
        Assert.Equal("MIXED_PRECISION", config["quant_algo"]!.GetValue<string>());
        Assert.Equal(current["kv_cache_scheme"]!.ToJsonString(), config["kv_cache_scheme"]!.ToJsonString());
        Assert.Equal(hf["quantized_layers"]!.ToJsonString(), config["quantized_layers"]!.ToJsonString());
        Assert.Equal(Strings(expected["ignore"]).Order(StringComparer.Ordinal), Strings(config["ignore"]));
        var groups = config["config_groups"]!.AsObject();
        Assert.Equal(Keys(expected["config_groups"]!), Keys(groups));
        foreach (var (name, group) in groups)
        {
            var published = expected["config_groups"]![name]!;
            var targets = Strings(group!["targets"]);
            Assert.Equal(targets.Order(StringComparer.Ordinal), targets);
            Assert.Equal(Strings(published["targets"]).ToHashSet(), targets.Select(Pattern).ToHashSet());
            var args = currentConverter ? published : current["config_groups"]![name]!;
            Assert.Equal(Strings(args["keys"]), Keys(group));
            foreach (var key in new[] { "input_activations", "weights" }.Where(k => group.AsObject().ContainsKey(k)))
                Assert.Equal(args[key]!.ToJsonString(), group[key]!.ToJsonString());
        }
    }

    /// <summary>
    /// Single-format NVFP4 on the routed experts, FP8 KV cache: the same keys, config groups and kv_cache_scheme as both
    /// published files. The exclusion patterns are those of the 122B file plus the routers (<c>mlp.gate</c>), which ModelOpt
    /// lists since transformers 5 made them non-Linear modules (quant_utils.py <c>_get_unquantized_moe_router_names</c>,
    /// newer than both files); the 397B file, older still, also carries a recipe pattern and only <c>mtp.layers.0*</c>.
    /// </summary>
    [Theory]
    [InlineData("nvidia--Qwen3.5-122B-A10B-NVFP4", true)]
    [InlineData("nvidia--Qwen3.5-397B-A17B-NVFP4", false)]
    public void ExpertsOnlyConfigsFollowNvidia(string reference, bool compareExclusions)
    {
        var expected = Reference(reference);
        var (result, hf, config) = Export("qwen3_5_moe", ExpertsOnlyPreset);

        var expectedHf = expected["hf_quant_config"]!;
        Assert.Equal(Strings(expectedHf["keys"]), Keys(hf));
        Assert.Equal("NVFP4", hf["quant_algo"]!.GetValue<string>());
        Assert.Equal("FP8", hf["kv_cache_quant_algo"]!.GetValue<string>());
        Assert.Equal(expectedHf["group_size"]!.GetValue<int>(), hf["group_size"]!.GetValue<int>());
        var exclude = Strings(hf["exclude_modules"]);
        Assert.Equal(exclude, result.ExcludedModules);
        // The summary is sorted; the MTP prefixes are appended after it.
        Assert.Equal(MtpExclusions, exclude[^2..]);
        Assert.Equal(exclude[..^2].Order(StringComparer.Ordinal), exclude[..^2]);
        if (compareExclusions)
        {
            var published = Strings(expectedHf["exclude_modules"]).ToHashSet();
            published.Add("model.language_model.layers.N.mlp.gate");
            Assert.Equal(published.Order(StringComparer.Ordinal), exclude.Select(Pattern).Distinct().Order(StringComparer.Ordinal));
        }

        var expectedConfig = expected["config_json"]!;
        Assert.Equal(Strings(expectedConfig["keys"]), Keys(config));
        Assert.Equal("NVFP4", config["quant_algo"]!.GetValue<string>());
        Assert.Equal(expectedConfig["kv_cache_scheme"]!.ToJsonString(), config["kv_cache_scheme"]!.ToJsonString());
        Assert.Equal(exclude, Strings(config["ignore"]));
        var group = config["config_groups"]!["group_0"]!;
        var publishedGroup = expectedConfig["config_groups"]!["group_0"]!;
        Assert.Single(config["config_groups"]!.AsObject());
        Assert.Equal(Strings(publishedGroup["keys"]), Keys(group));
        Assert.Equal(publishedGroup["input_activations"]!.ToJsonString(), group["input_activations"]!.ToJsonString());
        Assert.Equal(publishedGroup["weights"]!.ToJsonString(), group["weights"]!.ToJsonString());
        Assert.Equal(Strings(publishedGroup["targets"]), Strings(group["targets"]));
    }
}
