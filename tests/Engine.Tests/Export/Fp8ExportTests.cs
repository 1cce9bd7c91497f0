using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// FP8 per-tensor modules on disk, as ModelOpt writes them (helper notes FP8-FACTS, quant_utils.py): weight F8_E4M3
/// [out, in] with the FP8 kernel's bytes, <c>weight_scale</c> = (float)((double)amax / 448) from the Linear's own amax (no
/// group unification for FP8), <c>input_scale</c> = input amax / 448 in the export's operation order, both F32 0-d.
/// </summary>
public class Fp8ExportTests : IDisposable
{
    private const string MixedPreset = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";

    /// <summary>fl32(1/448): CUDA divides a tensor by the Python float 448 as a multiply by it.</summary>
    private static readonly float Reciprocal448 = BitConverter.UInt32BitsToSingle(0x3B124925u);

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static float InputScale(float amax, GlobalScaleOrder order) => order == GlobalScaleOrder.Cuda ? amax * Reciprocal448 : amax / 448f;

    [Theory]
    [InlineData("qwen3_5_moe", GlobalScaleOrder.Cuda)]
    [InlineData("qwen3_5_moe", GlobalScaleOrder.Cpu)]
    [InlineData("qwen3_5", GlobalScaleOrder.Cuda)]
    [InlineData("llama", GlobalScaleOrder.Cpu)]
    public void Fp8LinearsAreWrittenAsModelOptDoes(string family, GlobalScaleOrder order)
    {
        using var model = ExportFixture.Planned(_tmp, family, MixedPreset);
        var stats = model.Statistics!.InputAmax;
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp, order: order).Path);
        var fp8 = model.Plan!.Modules.Where(m => m.Decision == QuantDecision.Fp8).ToList();
        Assert.NotEmpty(fp8);
        var weightScales = new HashSet<float>();
        foreach (var m in fp8)
        {
            var source = model.Checkpoint.GetTensor(m.Name + ".weight");
            var w = source.File.ToArray(source.Info);
            int rows = (int)source.Info.Shape[0], cols = (int)source.Info.Shape[1];
            float amax = Amax.Compute(w, source.Info.DType).Amax;
            var weight = output.GetTensor(m.Name + ".weight");
            Assert.Equal(DType.F8_E4M3, weight.Info.DType);
            Assert.Equal([(long)rows, cols], weight.Info.Shape);
            var codes = new byte[rows * cols];
            Fp8.Quantize(m.Name + ".weight", w, source.Info.DType, rows, cols, codes, new Fp8Options { Order = order });
            Assert.Equal(codes, ExportedTensors.Bytes(output, m.Name + ".weight"));
            Assert.Equal((float)((double)amax / 448.0), ExportedTensors.Scalar(output, m.Name + ".weight_scale"));
            Assert.Equal(InputScale(stats[m.Name + ".input_quantizer"], order), ExportedTensors.Scalar(output, m.Name + ".input_scale"));
            Assert.False(output.Tensors.ContainsKey(m.Name + ".weight_scale_2"));
            weightScales.Add(ExportedTensors.Scalar(output, m.Name + ".weight_scale"));
        }
        // Each Linear keeps its own scale: q/k/v are not unified as NVFP4 groups are.
        Assert.True(weightScales.Count > fp8.Count / 2, $"{weightScales.Count} distinct weight scales for {fp8.Count} FP8 Linears");
    }

    /// <summary>
    /// FP8 fused experts: gate and up of expert e come from one weight quantizer (<c>gate_up_proj_weight_quantizers.e</c>),
    /// so they share the amax of <c>gate_up_proj[e]</c>; down stands alone; every expert's input scale is its
    /// container's shared input quantizer's.
    /// </summary>
    [Fact]
    public void Fp8FusedExpertsShareTheGateUpAmaxPerExpert()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe", MixedPreset, adjust: r => QuantRecipe.Build(r.Name, r.Entries.Concat(
        [
            new RecipeEntry { Position = 0, Pattern = "*mlp.experts*weight_quantizer*", Format = QuantizerFormat.Fp8, Source = "test" },
            new RecipeEntry { Position = 0, Pattern = "*mlp.experts*input_quantizer*", Format = QuantizerFormat.Fp8, Source = "test" },
        ])));
        using var output = CheckpointReader.Open(ExportFixture.Export(model, _tmp).Path);
        const string x = "model.language_model.layers.1.mlp.experts";
        var gateUp = model.Checkpoint.GetTensor(x + ".gate_up_proj");
        var down = model.Checkpoint.GetTensor(x + ".down_proj");
        int experts = (int)gateUp.Info.Shape[0], twoI = (int)gateUp.Info.Shape[1], hidden = (int)gateUp.Info.Shape[2];
        int I = twoI / 2, downRows = (int)down.Info.Shape[1], downCols = (int)down.Info.Shape[2];
        float gateUpInput = model.Statistics!.InputAmax[x + ".gate_up_proj_input_quantizer"];
        float downInput = model.Statistics.InputAmax[x + ".down_proj_input_quantizer"];
        for (int e = 0; e < experts; e++)
        {
            var pair = gateUp.File.ToArray(gateUp.Info, (long)e * twoI * hidden * 2, twoI * hidden * 2);
            float pairAmax = Amax.Compute(pair, DType.BF16).Amax;
            foreach (var (projection, half) in new[] { ("gate_proj", 0), ("up_proj", 1) })
            {
                string p = $"{x}.{e}.{projection}";
                var codes = new byte[I * hidden];
                Fp8.Quantize(p + ".weight", pair.AsSpan(half * I * hidden * 2, I * hidden * 2), DType.BF16, I, hidden, codes, new Fp8Options { Amax = pairAmax });
                Assert.Equal(codes, ExportedTensors.Bytes(output, p + ".weight"));
                Assert.Equal(Fp8.WeightScale(pairAmax), ExportedTensors.Scalar(output, p + ".weight_scale"));
                Assert.Equal(InputScale(gateUpInput, GlobalScaleOrder.Cuda), ExportedTensors.Scalar(output, p + ".input_scale"));
            }
            var downBytes = down.File.ToArray(down.Info, (long)e * downRows * downCols * 2, downRows * downCols * 2);
            string d = $"{x}.{e}.down_proj";
            Assert.Equal((float)((double)Amax.Compute(downBytes, DType.BF16).Amax / 448.0), ExportedTensors.Scalar(output, d + ".weight_scale"));
            Assert.Equal(InputScale(downInput, GlobalScaleOrder.Cuda), ExportedTensors.Scalar(output, d + ".input_scale"));
        }
    }

    /// <summary>One format, FP8: hf_quant_config has no group_size (ModelOpt merges the per-layer config, which has none),
    /// config.json one FP8 group for every Linear (convert_hf_quant_config_format).</summary>
    [Fact]
    public void Fp8OnlyPlanWritesTheSingleFormatConfigs()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3", MixedPreset, adjust: r => QuantRecipe.Build(r.Name, r.Entries.Concat(
        [
            new RecipeEntry { Position = 0, Pattern = "*mlp*", Enable = false, Source = "test" },
            new RecipeEntry { Position = 0, Pattern = "*lm_head*", Enable = false, Source = "test" },
        ])));
        Assert.Equal("FP8", model.Plan!.QuantAlgo);
        var result = ExportFixture.Export(model, _tmp);
        var expectedExclude = model.Modules.Any(m => m.Name == "lm_head") ? new List<string> { "lm_head" } : []; // tied in some fixtures
        expectedExclude.AddRange(Enumerable.Range(0, model.Config.LayerCount!.Value).Select(l => $"model.layers.{l}.mlp*"));
        Assert.Equal(expectedExclude, result.ExcludedModules);

        var hf = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "hf_quant_config.json")))!["quantization"]!.AsObject();
        Assert.Equal(["quant_algo", "kv_cache_quant_algo", "exclude_modules"], hf.Select(p => p.Key));
        Assert.Equal("FP8", hf["quant_algo"]!.GetValue<string>());
        Assert.Equal("FP8", hf["kv_cache_quant_algo"]!.GetValue<string>());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!["quantization_config"]!.AsObject();
        Assert.Equal(["config_groups", "ignore", "quant_algo", "kv_cache_scheme", "producer", "quant_method"], config.Select(p => p.Key));
        const string fp8Args = """{"dynamic":false,"num_bits":8,"type":"float"}""";
        Assert.Equal("{\"group_0\":{\"input_activations\":" + fp8Args + ",\"weights\":" + fp8Args + ",\"targets\":[\"Linear\"]}}",
            config["config_groups"]!.ToJsonString());
        Assert.Equal(expectedExclude, config["ignore"]!.AsArray().Select(n => n!.GetValue<string>()));
    }
}
