using System.Text.Json.Nodes;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// The FP8 KV cache (quant_utils.py <c>postprocess_state_dict</c>): in scaled mode <c>&lt;attn&gt;.k_proj.k_scale</c> and
/// <c>&lt;attn&gt;.v_proj.v_scale</c> = k/v_bmm_quantizer amax / 448 for exactly the softmax-attention layers of the
/// language model (not linear attention, not the MTP head); in cast mode no scales. Both declare kv_cache_quant_algo FP8.
/// </summary>
public class KvCacheExportTests : IDisposable
{
    private const string MixedPreset = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static bool IsKvScale(string name) => name.EndsWith(".k_scale", StringComparison.Ordinal) || name.EndsWith(".v_scale", StringComparison.Ordinal);

    /// <summary>The softmax-attention blocks, from the config alone: Qwen3.5's layer_types, every layer elsewhere.</summary>
    private static List<string> FullAttention(HFModel model)
    {
        if (model.Config.Root["text_config"]?["layer_types"] is JsonArray types)
            return types.Select((t, i) => (Type: t!.GetValue<string>(), i)).Where(x => x.Type == "full_attention")
                .Select(x => $"model.language_model.layers.{x.i}.self_attn").ToList();
        return Enumerable.Range(0, model.Config.LayerCount!.Value).Select(i => $"model.layers.{i}.self_attn").ToList();
    }

    [Theory]
    [InlineData("qwen3_5_moe", MixedPreset, GlobalScaleOrder.Cuda)]
    [InlineData("qwen3_5_moe", "W4A16_NVFP4", GlobalScaleOrder.Cpu)]
    [InlineData("llama", "W4A16_NVFP4", GlobalScaleOrder.Cuda)]
    public void ScaledModeWritesKAndVScalesOfEverySoftmaxAttentionLayer(string family, string preset, GlobalScaleOrder order)
    {
        using var model = ExportFixture.Planned(_tmp, family, preset, adjust: r => r.WithKvCache(KvCacheMode.Fp8Scaled));
        var stats = model.Statistics!.InputAmax;
        var result = ExportFixture.Export(model, _tmp, order: order);
        using var output = CheckpointReader.Open(result.Path);

        var attention = FullAttention(model);
        Assert.NotEmpty(attention);
        var expected = attention.SelectMany(a => new[] { a + ".k_proj.k_scale", a + ".v_proj.v_scale" }).Order(StringComparer.Ordinal);
        Assert.Equal(expected, output.Tensors.Keys.Where(IsKvScale).Order(StringComparer.Ordinal));
        foreach (var a in attention)
        {
            Assert.Equal(Fp8.ActivationScale(stats[a + ".k_bmm_quantizer"], a, order), ExportedTensors.Scalar(output, a + ".k_proj.k_scale"));
            Assert.Equal(Fp8.ActivationScale(stats[a + ".v_bmm_quantizer"], a, order), ExportedTensors.Scalar(output, a + ".v_proj.v_scale"));
        }
        Assert.Equal("FP8", result.KvCacheQuantAlgo);
        var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "hf_quant_config.json")))!["quantization"]!;
        Assert.Equal("FP8", hf["kv_cache_quant_algo"]!.GetValue<string>());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!["quantization_config"]!;
        Assert.Equal("""{"dynamic":false,"num_bits":8,"type":"float"}""", config["kv_cache_scheme"]!.ToJsonString());
    }

    [Theory]
    [InlineData("qwen3_5_moe", MixedPreset)]
    [InlineData("qwen3_moe", "NVFP4_EXPERTS_ONLY_KV_FP8_CAST")]
    public void CastModeWritesNoScalesButDeclaresFp8(string family, string preset)
    {
        using var model = ExportFixture.Planned(_tmp, family, preset);
        Assert.Equal(KvCacheMode.Fp8Cast, model.Plan!.KvCache.Mode);
        var result = ExportFixture.Export(model, _tmp);
        using var output = CheckpointReader.Open(result.Path);
        Assert.DoesNotContain(output.Tensors.Keys, IsKvScale);
        Assert.Equal("FP8", result.KvCacheQuantAlgo);
        var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "hf_quant_config.json")))!["quantization"]!;
        Assert.Equal("FP8", hf["kv_cache_quant_algo"]!.GetValue<string>());
    }

    [Fact]
    public void UnquantizedKvCacheDeclaresNullAndNoScheme()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3", "W4A16_NVFP4");
        var result = ExportFixture.Export(model, _tmp);
        Assert.Null(result.KvCacheQuantAlgo);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!["quantization_config"]!.AsObject();
        Assert.False(config.ContainsKey("kv_cache_scheme"));
    }

    [Fact]
    public void MissingKvAmaxIsRefusedBeforeAnythingIsWritten()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe", MixedPreset, adjust: r => r.WithKvCache(KvCacheMode.Fp8Scaled));
        var amax = model.Statistics!.InputAmax.ToDictionary();
        amax.Remove("model.language_model.layers.3.self_attn.v_bmm_quantizer");
        model.Statistics = new CalibrationStatistics(amax);
        string target = _tmp.Combine("kv-missing");
        var ex = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions()));
        Assert.Equal(ExportErrorIds.KvCacheAmaxMissing, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, ex.Kind);
        Assert.Contains("layers.3.self_attn.v_bmm_quantizer", ex.Message);
        Assert.Contains("Fp8Cast", ex.Message);
        Assert.False(Directory.Exists(target));

        amax["model.language_model.layers.3.self_attn.v_bmm_quantizer"] = 0f;
        model.Statistics = new CalibrationStatistics(amax);
        Assert.Equal(ExportErrorIds.KvCacheAmaxMissing, Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions())).ErrorId);
    }

    [Fact]
    public void ScaledKvCacheWithoutCalibrationSaysWhichScalesNeedIt()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe", "W4A16_NVFP4", adjust: r => r.WithKvCache(KvCacheMode.Fp8Scaled));
        model.Statistics = null;
        var ex = Assert.Throws<ModelOptException>(() => ExportFixture.Export(model, _tmp));
        Assert.Equal("CalibrationRequired", ex.ErrorId);
        Assert.Contains("k_scale/v_scale of 2 KV-cache quantizer(s)", ex.Message);
        Assert.DoesNotContain("input_scale", ex.Message);
        Assert.Contains("Invoke-Calibration", ex.Message);
    }
}
