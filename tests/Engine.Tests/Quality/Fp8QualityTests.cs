using System.Text.Json.Nodes;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Quality;

/// <summary>
/// The FP8, MIXED_PRECISION and FP8 KV-cache forms: NVIDIA's Qwen3.6-style mix measured on the generated Qwen3.5-MoE,
/// FP8 weights equal to the dequantized export bytes, FP8 activation emulation within E4M3's error, the KV cache
/// changing the model only when quantized, and an FP8 export written here by hand read back to the planned numbers.
/// </summary>
public sealed class Fp8QualityTests : IDisposable
{
    private static readonly QualityOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 3, SequenceLength = 24, Seed = 9 } };
    private static readonly CalibrationOptions Calibration = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32 } };

    private readonly TempFolder _tmp = new();

    public Fp8QualityTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _tmp.Dispose();

    private HFModel Import(string family) =>
        ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));

    private static void Plan(HFModel model, QuantRecipe recipe, bool allowEmpty = false)
    {
        model.Plan = QuantPlanner.Plan(model, recipe, allowEmpty);
        model.Statistics = model.Plan.NeedsCalibration ? Calibrator.Run(model, Calibration).Statistics : null;
    }

    private static QuantRecipe Fp8On(params string[] scopes) => QuantRecipe.Build("fp8 test",
        scopes.SelectMany(s => new[]
        {
            new RecipeEntry { Position = 0, Pattern = s + "weight_quantizer*", Format = QuantizerFormat.Fp8, Source = "test" },
            new RecipeEntry { Position = 0, Pattern = s + "input_quantizer", Format = QuantizerFormat.Fp8, Source = "test" },
        }).Prepend(Presets.DisableAll("test")).Concat(Presets.DefaultDisabled()));

    [Fact]
    public void TheQwen36StyleMixMeasuresOnTheGeneratedQwen35Moe()
    {
        using var model = Import("qwen3_5_moe");
        Plan(model, Presets.Get("W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST"));
        Assert.Equal(["FP8", "W4A16_NVFP4"], model.Plan!.Formats);
        var report = QualityMeasurer.MeasurePlanned(model, Small);
        Assert.Equal("MIXED_PRECISION (FP8, W4A16_NVFP4) + FP8 KV", report.Scheme);
        Assert.True(double.IsFinite(report.QuantizedPerplexity) && report.QuantizedPerplexity > 1, $"perplexity {report.QuantizedPerplexity}");
        Assert.True(report.MeanKl > 0, "quantization changed nothing: the quantized form was not applied");
        Assert.InRange(report.Top1Agreement, 0.5, 1 - 1e-9);
    }

    [Fact]
    public void PlannedFp8WeightsAreTheDequantizedExportBytes()
    {
        using var model = Import("qwen3_5_moe");
        Plan(model, Fp8On("*self_attn*", "*mlp.experts*"));
        var form = new PlannedQuantization(model, model.Plan!, default);
        using var scope = NewDisposeScope();

        // A Linear: its own amax, quantized as Fp8.Quantize writes it, dequantized as Fp8.Dequantize reads it.
        string q = "model.language_model.layers.3.self_attn.q_proj";
        var source = model.Checkpoint.GetTensor(q + ".weight");
        int rows = (int)source.Info.Shape[0], cols = (int)source.Info.Shape[1];
        Assert.Equal(Dequantized(source, 0, rows, cols), FloatTensors.Values(form.Weight(q, Widened(source))));

        // A fused expert's gate and up halves: one weight quantizer over gate_up_proj[e], so one amax for both.
        var gateUp = model.Checkpoint.GetTensor("model.language_model.layers.0.mlp.experts.gate_up_proj");
        int experts = (int)gateUp.Info.Shape[0], expertRows = (int)gateUp.Info.Shape[1], hidden = (int)gateUp.Info.Shape[2];
        var planned = FloatTensors.Values(form.Weight(gateUp.Name, Widened(gateUp)));
        for (int e = 0; e < experts; e++)
        {
            var expected = Dequantized(gateUp, (long)e * expertRows * hidden * 2, expertRows, hidden);
            Assert.Equal(expected, planned.AsSpan(e * expertRows * hidden, expertRows * hidden).ToArray());
        }
    }

    /// <summary>The source bytes (BF16) from <paramref name="byteOffset"/> quantized and dequantized by the numerics alone.</summary>
    private static float[] Dequantized(TensorRef source, long byteOffset, int rows, int cols)
    {
        using var bytes = source.File.Read(source.Info, byteOffset, rows * cols * DTypes.SizeOf(source.Info.DType));
        var codes = new byte[rows * cols];
        var result = Fp8.Quantize(source.Name, bytes.Span, source.Info.DType, rows, cols, codes);
        var values = new float[codes.Length];
        Fp8.Dequantize(codes, result.WeightScale, values);
        return values;
    }

    private static Tensor Widened(TensorRef source)
    {
        var bytes = source.File.ToArray(source.Info);
        var values = new float[bytes.Length / 2];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes, 2 * i) << 16);
        return tensor(values, source.Info.Shape, dtype: ScalarType.Float32);
    }

    [Fact]
    public void Fp8ExpertsOfALayerShareTheirLargestInputAmax_AnIdleOneIncluded()
    {
        using var model = Import("qwen3_moe");
        Plan(model, Fp8On("*mlp.experts*"));
        const string container = "model.layers.1.mlp.experts.", idle = container + "5.down_proj.input_quantizer";
        var amax = model.Statistics!.InputAmax.Where(kv => kv.Key != idle).ToDictionary(kv => kv.Key, kv => kv.Value);
        model.Statistics = new CalibrationStatistics(amax);
        var down = amax.Where(kv => kv.Key.StartsWith(container, StringComparison.Ordinal) && kv.Key.EndsWith(".down_proj.input_quantizer", StringComparison.Ordinal)).ToList();
        var gate = amax.Where(kv => kv.Key.StartsWith(container, StringComparison.Ordinal) && kv.Key.EndsWith(".gate_proj.input_quantizer", StringComparison.Ordinal)).ToList();
        Assert.True(down.Count > 1 && down.Select(kv => kv.Value).Distinct().Count() > 1, "the experts' down inputs were not measured apart");

        var form = new PlannedQuantization(model, model.Plan!, default);
        var shared = new Fp8Activations(Fp8.ActivationScale(down.Max(kv => kv.Value), idle));
        Assert.Equal(shared, form.Activation(idle));
        Assert.All(down, kv => Assert.Equal(shared, form.Activation(kv.Key)));
        // gate/up inputs are another scale, shared by gate and up of every expert of the layer.
        var gateUp = new Fp8Activations(Fp8.ActivationScale(gate.Max(kv => kv.Value), idle));
        Assert.Equal(gateUp, form.Activation(container + "0.up_proj.input_quantizer"));
        Assert.NotEqual(shared, gateUp);
    }

    [Fact]
    public void Fp8ActivationsStayWithinE4M3sRoundingAndSaturateAt448Scales()
    {
        const float scale = 0.037f;
        var random = new Random(7);
        var x = Enumerable.Range(0, 4096).Select(_ => (float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-5, 3)))).ToArray();
        using var scope = NewDisposeScope();
        var y = FloatTensors.Values(new Fp8Activations(scale).FakeQuantize(tensor(x, [64, 64])));
        int saturated = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (Math.Abs(x[i]) > 448 * scale * (1 + 1.0 / 16))
            {
                Assert.Equal(MathF.CopySign(448 * scale, x[i]), y[i], 1e-6f * 448 * scale);
                saturated++;
                continue;
            }
            // Three mantissa bits: half an ulp is 2^-4 of the value; below the normal range, half the smallest step, 2^-10.
            double bound = Math.Max(Math.Abs(x[i]) / 16, scale * Math.Pow(2, -10)) * (1 + 1e-5);
            Assert.True(Math.Abs(y[i] - x[i]) <= bound, $"x {x[i]} became {y[i]} (bound {bound})");
        }
        Assert.True(saturated > 100, "no value reached the clamp");
        Assert.True(x.Zip(y).Count(p => p.First != p.Second) > x.Length / 2, "almost nothing was rounded");
    }

    [Fact]
    public void TheKvCacheChangesTheLogitsOnlyWhenQuantized()
    {
        // Nothing but the KV cache is quantized (Llama has no experts): the cache alone is measured.
        using var model = Import("llama");
        var recipe = Presets.Get("NVFP4_EXPERTS_ONLY");
        Plan(model, recipe, allowEmpty: true);
        var none = QualityMeasurer.MeasurePlanned(model, Small);
        Plan(model, recipe.WithKvCache(KvCacheMode.Fp8Cast), allowEmpty: true);
        var cast = QualityMeasurer.MeasurePlanned(model, Small);
        Plan(model, recipe.WithKvCache(KvCacheMode.Fp8Scaled), allowEmpty: true);
        Assert.Contains("model.layers.1.self_attn.v_bmm_quantizer", model.Statistics!.InputAmax.Keys);
        var scaled = QualityMeasurer.MeasurePlanned(model, Small);

        Assert.Equal("unquantized", none.Scheme);
        Assert.Equal(0, none.MeanKl, 1e-12);
        Assert.Equal("FP8 KV", cast.Scheme);
        Assert.True(cast.MeanKl > 0, "the FP8 cast KV cache changed nothing");
        Assert.True(scaled.MeanKl > 0, "the scaled FP8 KV cache changed nothing");
        Assert.NotEqual(cast.MeanKl, scaled.MeanKl);
        Assert.Equal(none.ReferencePerplexity, scaled.ReferencePerplexity);
    }

    [Fact]
    public void AnFp8ExportWithKvScalesWrittenByHandReadsBackToThePlannedNumbers()
    {
        // FP8 o_proj (each its own scales) and a scaled KV cache, planned and calibrated; then the export this plan
        // defines, written here from the numerics in the documented ModelOpt layout (PART2 design: F8_E4M3 weight,
        // 0-d F32 weight_scale and input_scale, <attn>.k_proj.k_scale / v_proj.v_scale, kv_cache_quant_algo FP8).
        using var model = Import("qwen3");
        Plan(model, Fp8On("*o_proj*").WithKvCache(KvCacheMode.Fp8Scaled));
        var planned = QualityMeasurer.MeasurePlanned(model, Small);
        string folder = WriteFp8Export(model, _tmp.Combine("fp8-export"));

        var readBack = QualityMeasurer.MeasureExport(model, folder, Small);
        Assert.Equal("FP8 + FP8 KV", planned.Scheme);
        Assert.Equal(planned.Scheme, readBack.Scheme);
        Assert.Equal(planned.QuantizedPerplexity, readBack.QuantizedPerplexity);
        Assert.Equal(planned.MeanKl, readBack.MeanKl);
        Assert.Equal(planned.Top1Agreement, readBack.Top1Agreement);
        Assert.True(planned.MeanKl > 0);

        // Without its k/v scales the export still declares an FP8 KV cache, which engines then read with scale 1.0.
        string unscaled = WriteFp8Export(model, _tmp.Combine("fp8-export-cast"), kvScales: false);
        Assert.NotEqual(planned.MeanKl, QualityMeasurer.MeasureExport(model, unscaled, Small).MeanKl);
    }

    private static string WriteFp8Export(HFModel model, string folder, bool kvScales = true)
    {
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(model.Path, "config.json"), Path.Combine(folder, "config.json"));
        File.WriteAllText(Path.Combine(folder, QuantizedCheckpoints.HfQuantConfigFileName), new JsonObject
        {
            ["producer"] = new JsonObject { ["name"] = "modelopt" },
            ["quantization"] = new JsonObject { ["quant_algo"] = "FP8", ["kv_cache_quant_algo"] = "FP8", ["exclude_modules"] = new JsonArray() },
        }.ToJsonString());

        var statistics = model.Statistics!;
        var tensors = new List<(TensorSpec Spec, byte[] Bytes)>();
        foreach (var source in model.Checkpoint.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            string name = source.Name;
            if (!name.EndsWith(".o_proj.weight", StringComparison.Ordinal))
            {
                tensors.Add((new TensorSpec(name, source.Info.DType, source.Info.Shape), source.File.ToArray(source.Info)));
                continue;
            }
            string module = name[..^".weight".Length];
            int rows = (int)source.Info.Shape[0], cols = (int)source.Info.Shape[1];
            var codes = new byte[rows * cols];
            var result = Fp8.Quantize(name, source.File.ToArray(source.Info), source.Info.DType, rows, cols, codes);
            tensors.Add((new TensorSpec(name, DType.F8_E4M3, source.Info.Shape), codes));
            tensors.Add(Scalar(module + ".weight_scale", result.WeightScale));
            string input = module + ".input_quantizer";
            tensors.Add(Scalar(module + ".input_scale", Fp8.ActivationScale(statistics.InputAmax[input], input)));
        }
        if (kvScales)
        {
            foreach (var layer in model.Plan!.KvCache.Layers)
            {
                tensors.Add(Scalar(layer.KeyScaleName, Fp8.ActivationScale(statistics.InputAmax[layer.Key.Name], layer.Key.Name)));
                tensors.Add(Scalar(layer.ValueScaleName, Fp8.ActivationScale(statistics.InputAmax[layer.Value.Name], layer.Value.Name)));
            }
        }
        using var writer = new CheckpointWriter(folder, tensors.Select(t => t.Spec).ToList());
        foreach (var (spec, bytes) in tensors) writer.WriteTensor(spec.Name, bytes);
        writer.Complete();
        return folder;
    }

    private static (TensorSpec, byte[]) Scalar(string name, float value) => (new TensorSpec(name, DType.F32, []), BitConverter.GetBytes(value));
}
