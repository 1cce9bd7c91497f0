using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Tests.Export;
using ModelOptPS.Engine.Tests.Verification;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Model;

/// <summary>A checkpoint that is already quantized is refused at import, naming its format, before any work.</summary>
public class QuantizedCheckpointTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static ModelOptException Refused(string folder)
    {
        var ex = Assert.Throws<ModelOptException>(() => ModelImporter.Import(folder));
        Assert.Equal(QuantizedCheckpoints.CheckpointAlreadyQuantized, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidOperation, ex.Kind);
        return ex;
    }

    [Theory]
    [InlineData(ExportFormat.ModelOpt, "ModelOpt W4A16_NVFP4", "hf_quant_config.json")]
    [InlineData(ExportFormat.CompressedTensors, "compressed-tensors NVFP4", "config.json")]
    public void AnExportFedBackInIsRefusedByItsConfig(ExportFormat format, string named, string file)
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe", "W4A16_NVFP4");
        var export = ExportFixture.Export(model, _tmp, format);
        var ex = Refused(export.Path);
        Assert.Contains(named, ex.Message);
        Assert.Equal(Path.Combine(export.Path, file), ex.Path);
    }

    [Theory]
    [InlineData(ExportFormat.ModelOpt, "ModelOpt NVFP4", "weight_scale_2")]
    [InlineData(ExportFormat.CompressedTensors, "compressed-tensors NVFP4", "weight_global_scale")]
    public void AnExportWithoutItsQuantizationConfigIsRefusedByItsTensors(ExportFormat format, string named, string scale)
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        var export = ExportFixture.Export(model, _tmp, format);
        File.Delete(Path.Combine(export.Path, QuantizedCheckpoints.HfQuantConfigFileName));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(export.Path, "config.json")))!.AsObject();
        config.Remove("quantization_config");
        File.WriteAllText(Path.Combine(export.Path, "config.json"), config.ToJsonString());
        var ex = Refused(export.Path);
        Assert.Contains(named, ex.Message);
        Assert.Contains(scale, ex.Message);
        Assert.EndsWith(".safetensors", ex.Path);
    }

    /// <summary>A llama fixture whose q_proj is replaced by an F8_E4M3 weight and the given companions (a hand-made header).</summary>
    private string Fp8Llama(params (string Suffix, DType DType, long[] Shape)[] companions)
    {
        string folder = TinyCheckpoints.Write("llama", _tmp.Combine("fp8-" + Guid.NewGuid().ToString("N")[..6]));
        const string module = "model.layers.0.self_attn.q_proj";
        new CheckpointEditor(folder).Tensors(tensors =>
        {
            int at = tensors.FindIndex(t => t.Name == module + ".weight");
            var weight = tensors[at];
            long elements = weight.Shape.Aggregate(1L, (a, b) => a * b);
            tensors[at] = weight with { DType = DType.F8_E4M3, Data = new byte[elements] };
            foreach (var (suffix, dtype, shape) in companions)
                tensors.Add(new StoredTensor(module + suffix, dtype, shape, new byte[shape.Aggregate(1L, (a, b) => a * b) * DTypes.SizeOf(dtype)]) { Shard = weight.Shard });
        });
        return folder;
    }

    [Fact]
    public void BlockFp8WeightsWithScaleInvAreRefused()
    {
        var ex = Refused(Fp8Llama((".weight_scale_inv", DType.F32, [1, 1])));
        Assert.Contains("block-FP8", ex.Message);
        Assert.Contains("weight_scale_inv", ex.Message);
    }

    [Fact]
    public void Fp8WeightsWithPerTensorScalesAreRefused()
    {
        var ex = Refused(Fp8Llama((".weight_scale", DType.F32, []), (".input_scale", DType.F32, [])));
        Assert.Contains("FP8 (per-tensor", ex.Message);
        Assert.Contains("weight_scale, input_scale", ex.Message);
    }

    [Fact]
    public void LowPrecisionWeightsWithoutScalesAreNotTakenForQuantized()
    {
        // An F8 weight alone says nothing about a quantization format; import goes on (and reports what it finds).
        string folder = Fp8Llama();
        using var model = ModelImporter.Import(folder);
        Assert.NotNull(model);
    }

    [Theory]
    [InlineData("""{"quant_method": "fp8", "weight_block_size": [128, 128], "activation_scheme": "dynamic"}""", "block-FP8 (128x128 blocks")]
    [InlineData("""{"quant_method": "fp8", "activation_scheme": "static"}""", ": FP8 (")]
    [InlineData("""{"quant_method": "modelopt", "quant_algo": "FP8"}""", "ModelOpt FP8")]
    [InlineData("""{"quant_method": "compressed-tensors", "config_groups": {"group_0": {"format": "pack-quantized"}}}""", "compressed-tensors W4A16")]
    [InlineData("""{"quant_method": "compressed-tensors", "format": "float-quantized"}""", "compressed-tensors FP8")]
    [InlineData("""{"quant_method": "gptq", "bits": 4}""", "GPTQ 4-bit")]
    [InlineData("""{"quant_method": "awq", "bits": 4}""", "AWQ 4-bit")]
    [InlineData("""{"quant_method": "mxfp4"}""", "MXFP4")]
    [InlineData("""{"quant_method": "hqq"}""", "'hqq'")]
    public void AQuantizationConfigInConfigJsonIsRefusedAndNamed(string quantizationConfig, string named)
    {
        string folder = TinyCheckpoints.Write("llama", _tmp.Combine("declared-" + Guid.NewGuid().ToString("N")[..6]));
        string configPath = Path.Combine(folder, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["quantization_config"] = JsonNode.Parse(quantizationConfig);
        File.WriteAllText(configPath, config.ToJsonString());
        var ex = Refused(folder);
        Assert.Contains(named, ex.Message);
        Assert.Equal(configPath, ex.Path);
    }
}
