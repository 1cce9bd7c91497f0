using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// Every family under every preset, in both formats (compressed-tensors refuses the plans it cannot express: FP8,
/// MIXED_PRECISION, a quantized KV cache): each quantized weight has exactly the contract's tensors with bytes equal to the NVFP4 or FP8 kernel's output for its
/// group amax, every other tensor is a byte-for-byte copy, and nothing else is in the checkpoint.
/// </summary>
public class ExportLayoutTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string, string, ExportFormat> Cases()
    {
        var data = new TheoryData<string, string, ExportFormat>();
        foreach (var family in Fixtures.TinyCheckpoints.Families)
        foreach (var preset in Presets.Names)
        foreach (var format in Enum.GetValues<ExportFormat>())
        {
            bool dense = family is "llama" or "qwen2" or "qwen3";
            if (dense && preset.StartsWith("NVFP4_EXPERTS_ONLY", StringComparison.Ordinal)) continue; // an empty plan: refused by the planner
            data.Add(family, preset, format);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportMatchesTheContract(string family, string preset, ExportFormat format)
    {
        using var model = ExportFixture.Planned(_tmp, family, preset);
        bool ct = format == ExportFormat.CompressedTensors;
        if (ct && (model.Plan!.QuantAlgo is not ("NVFP4" or "W4A16_NVFP4") || model.Plan.KvCache.Mode != KvCacheMode.None))
        {
            var refused = Assert.Throws<ModelOptException>(() => ExportFixture.Export(model, _tmp, format));
            Assert.Equal(ExportErrorIds.CompressedTensorsFormatUnsupported, refused.ErrorId);
            return;
        }
        var result = ExportFixture.Export(model, _tmp, format, maxShardBytes: 300_000);
        using var output = CheckpointReader.Open(result.Path);
        var units = WeightUnits.From(model, model.Plan!);
        var scales = ScaleGroups.Compute(model, units, default);
        var expected = new HashSet<string>(StringComparer.Ordinal);

        foreach (var unit in units)
        {
            string p = unit.OutputPrefix;
            using var weight = unit.Read();
            if (!unit.IsQuantized)
            {
                expected.Add(p + ".weight");
                Assert.Equal(weight.Span.ToArray(), Bytes(output, p + ".weight"));
                Assert.Equal([(long)unit.Rows, unit.Cols], output.GetTensor(p + ".weight").Info.Shape);
                continue;
            }
            if (unit.Decision == QuantDecision.Fp8)
            {
                var codes = new byte[unit.Rows * unit.Cols];
                var fp8 = Fp8.Quantize(p + ".weight", weight.Span, unit.DType, unit.Rows, unit.Cols, codes, new Fp8Options { Amax = scales.WeightAmax(unit) });
                Assert.Equal(codes, Bytes(output, p + ".weight"));
                Assert.Equal(DType.F8_E4M3, output.GetTensor(p + ".weight").Info.DType);
                Assert.Equal([(long)unit.Rows, unit.Cols], output.GetTensor(p + ".weight").Info.Shape);
                Assert.Equal(fp8.WeightScale, Scalar(output, p + ".weight_scale", []));
                Assert.Equal(Fp8.ActivationScale(scales.InputAmax(unit), unit.InputQuantizer!), Scalar(output, p + ".input_scale", []));
                expected.UnionWith([p + ".weight", p + ".weight_scale", p + ".input_scale"]);
                continue;
            }
            string packedName = ct ? p + ".weight_packed" : p + ".weight";
            var packed = new byte[unit.Rows * unit.Cols / 2];
            var blockScales = new byte[unit.Rows * unit.Cols / 16];
            var r = Nvfp4.Quantize(p, weight.Span, unit.DType, unit.Rows, unit.Cols, packed, blockScales, new Nvfp4Options { GlobalAmax = scales.WeightAmax(unit) });
            Assert.Equal(packed, Bytes(output, packedName));
            Assert.Equal(blockScales, Bytes(output, p + ".weight_scale"));
            Assert.Equal(DType.U8, output.GetTensor(packedName).Info.DType);
            Assert.Equal([(long)unit.Rows, unit.Cols / 2], output.GetTensor(packedName).Info.Shape);
            Assert.Equal(DType.F8_E4M3, output.GetTensor(p + ".weight_scale").Info.DType);
            Assert.Equal([(long)unit.Rows, unit.Cols / 16], output.GetTensor(p + ".weight_scale").Info.Shape);
            expected.UnionWith([packedName, p + ".weight_scale"]);
            if (ct)
            {
                Assert.Equal(1f / r.WeightScale2, Scalar(output, p + ".weight_global_scale", [1]));
                expected.Add(p + ".weight_global_scale");
            }
            else
            {
                Assert.Equal(r.WeightScale2, Scalar(output, p + ".weight_scale_2", []));
                expected.Add(p + ".weight_scale_2");
            }
            if (unit.Decision == QuantDecision.Nvfp4)
            {
                float inputScale = GlobalScale.FromAmax(scales.InputAmax(unit));
                string name = ct ? p + ".input_global_scale" : p + ".input_scale";
                Assert.Equal(ct ? 1f / inputScale : inputScale, Scalar(output, name, ct ? [1] : []));
                expected.Add(name);
            }
        }
        // Everything that is not a weight unit is copied unchanged under its source name.
        foreach (var m in model.Plan!.Modules)
        {
            bool handled = m.Kind is ModuleKind.Linear or ModuleKind.Router || WeightUnits.IsSplit(m.Module);
            foreach (var (param, info) in m.Module.Parameters)
            {
                if (handled && param is "weight" or "gate_up_proj" or "down_proj") continue;
                var source = model.Checkpoint.GetTensor(info.Name);
                Assert.Equal(source.File.ToArray(source.Info), Bytes(output, info.Name));
                expected.Add(info.Name);
            }
        }
        Assert.Equal(expected.Order(StringComparer.Ordinal), output.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(result.TensorCount, output.Tensors.Count);
        Assert.Equal(units.Count(u => u.IsQuantized), result.QuantizedModules);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.Path, "config.json")))!;
        Assert.Equal(ct ? "compressed-tensors" : "modelopt", config["quantization_config"]!["quant_method"]!.GetValue<string>());
        Assert.Equal(ct, !File.Exists(Path.Combine(result.Path, "hf_quant_config.json")));
        Assert.True(File.Exists(Path.Combine(result.Path, "tokenizer_config.json")));
    }

    private static byte[] Bytes(CheckpointReader reader, string name)
    {
        var t = reader.GetTensor(name);
        return t.File.ToArray(t.Info);
    }

    private static float Scalar(CheckpointReader reader, string name, long[] shape)
    {
        var t = reader.GetTensor(name);
        Assert.Equal(DType.F32, t.Info.DType);
        Assert.Equal(shape, t.Info.Shape);
        return BitConverter.ToSingle(t.File.ToArray(t.Info));
    }
}
