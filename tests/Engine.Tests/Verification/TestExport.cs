using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// A small NVFP4 writer for the verifier's own tests, written from the contract and independent of the product's
/// exporter (so verifier tests do not depend on it): quantizes every language-model Linear except lm_head and (unless
/// asked to) the linear-attention a/b projections, splits fused experts, shares the global and input scales of the
/// Linears that read one input (q/k/v; gate/up; the linear-attention input projections) and each expert set's input
/// scales, lists every other Linear by exact name, and writes either layout.
/// Whole tensors in memory: for the tiny generated checkpoints only.
/// </summary>
internal static class TestExport
{
    /// <param name="quantizeLinearAttentionBa">Also quantize in_proj_b/in_proj_a (Qwen3-Next in_proj_ba), which the contract leaves unquantized.</param>
    public static string Write(string source, string target, QuantFormat format, bool weightOnly = false, long maxShardBytes = 150_000,
        bool quantizeLinearAttentionBa = false)
    {
        Directory.CreateDirectory(target);
        using var reader = CheckpointReader.Open(source);
        var modules = InventoryBuilder.Build(reader.Tensors.Values.Select(t => t.Info), ArchitectureSpec.Unknown);
        var units = new List<Unit>();
        var copies = new List<StoredTensor>();
        var excluded = new List<string>();
        foreach (var module in modules)
        {
            foreach (var (parameter, info) in module.Parameters)
            {
                var tensor = reader.Tensors[info.Name];
                if (IsQuantized(module, quantizeLinearAttentionBa) && parameter == "weight") units.Add(new Unit(module.Name, tensor, 0, info.Shape[0], info.Shape[1]));
                else if (module.Kind == ModuleKind.FusedExperts && module.Section == ModelSection.Text) units.AddRange(Split(module.Name, parameter, tensor));
                else copies.Add(Copy(tensor));
            }
            if (!IsQuantized(module, quantizeLinearAttentionBa) && module.Kind is ModuleKind.Linear or ModuleKind.Router
                || module.Kind == ModuleKind.FusedExperts && module.Section != ModelSection.Text)
                excluded.Add(module.Name);
        }
        var naming = format == QuantFormat.CompressedTensors
            ? (Packed: "weight_packed", Global: "weight_global_scale", Input: "input_global_scale", Scalar: new long[] { 1 })
            : (Packed: "weight", Global: "weight_scale_2", Input: "input_scale", Scalar: []);
        bool reciprocal = format == QuantFormat.CompressedTensors;
        var groupAmax = units.GroupBy(u => u.WeightGroup).ToDictionary(g => g.Key, g => g.Max(u => u.Amax()));
        var tensors = new List<StoredTensor>(copies);
        foreach (var unit in units)
        {
            var packed = new byte[unit.Rows * unit.Cols / 2];
            var scales = new byte[unit.Rows * unit.Cols / 16];
            var result = Nvfp4.Quantize(unit.Name, unit.Bytes(), unit.Source.Info.DType, (int)unit.Rows, (int)unit.Cols, packed, scales,
                new Nvfp4Options { GlobalAmax = groupAmax[unit.WeightGroup] });
            tensors.Add(new StoredTensor($"{unit.Name}.{naming.Packed}", DType.U8, [unit.Rows, unit.Cols / 2], packed));
            tensors.Add(new StoredTensor($"{unit.Name}.weight_scale", DType.F8_E4M3, [unit.Rows, unit.Cols / 16], scales));
            tensors.Add(Scalar($"{unit.Name}.{naming.Global}", result.WeightScale2, reciprocal, naming.Scalar));
            if (!weightOnly)
                tensors.Add(Scalar($"{unit.Name}.{naming.Input}", GlobalScale.InputScale(InputAmax(unit.InputGroup), unit.Name), reciprocal, naming.Scalar));
        }
        StoredTensor.WriteCheckpoint(target, tensors, maxShardBytes);
        WriteConfigs(reader.Config, target, format, weightOnly, excluded.Order(StringComparer.Ordinal).ToList());
        foreach (var file in Directory.EnumerateFiles(source).Where(f => !f.EndsWith(".safetensors") && !f.EndsWith(".index.json") && Path.GetFileName(f) != "config.json"))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    private static bool IsQuantized(ModelModule module, bool linearAttentionBa)
    {
        string last = ModuleClassifier.LastComponent(module.Name);
        return module.Kind == ModuleKind.Linear && module.Section == ModelSection.Text && last != "lm_head"
            && (linearAttentionBa || !last.StartsWith("in_proj_a", StringComparison.Ordinal) && !last.StartsWith("in_proj_b", StringComparison.Ordinal))
            && module.Shape[1] % 16 == 0;
    }

    private static IEnumerable<Unit> Split(string experts, string parameter, TensorRef tensor)
    {
        var shape = tensor.Info.Shape;
        long bytes = shape[1] * shape[2] * DTypes.SizeOf(tensor.Info.DType);
        for (int e = 0; e < shape[0]; e++)
        {
            if (parameter == "gate_up_proj")
            {
                yield return new Unit($"{experts}.{e}.gate_proj", tensor, e * bytes, shape[1] / 2, shape[2]);
                yield return new Unit($"{experts}.{e}.up_proj", tensor, e * bytes + bytes / 2, shape[1] / 2, shape[2]);
            }
            else
            {
                yield return new Unit($"{experts}.{e}.down_proj", tensor, e * bytes, shape[1], shape[2]);
            }
        }
    }

    private static StoredTensor Copy(TensorRef t) => new(t.Name, t.Info.DType, t.Info.Shape, t.File.ToArray(t.Info));

    private static StoredTensor Scalar(string name, float value, bool reciprocal, long[] shape)
    {
        var data = new byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(data, reciprocal ? 1f / value : value);
        return new StoredTensor(name, DType.F32, shape, data);
    }

    /// <summary>A deterministic activation amax in [1, 4) per input group, standing in for calibration.</summary>
    private static float InputAmax(string group) => 1f + (uint)group.GetHashCode(StringComparison.Ordinal) % 300 / 100f;

    private static void WriteConfigs(ModelConfig source, string target, QuantFormat format, bool weightOnly, List<string> excluded)
    {
        var config = source.Root.DeepClone().AsObject();
        if (source.Architecture is null)
            config["architectures"] = new JsonArray(ArchitectureRegistry.Resolve(null, source.ModelType, source.TextModelType).Architecture);
        var args = new JsonObject { ["dynamic"] = false, ["num_bits"] = 4, ["type"] = "float", ["group_size"] = 16 };
        string algo = weightOnly ? "W4A16_NVFP4" : "NVFP4";
        var producer = new JsonObject { ["name"] = "modelopt", ["version"] = "test" };
        if (format == QuantFormat.ModelOpt)
        {
            var group = new JsonObject { ["weights"] = args.DeepClone(), ["targets"] = new JsonArray("Linear") };
            if (!weightOnly) group["input_activations"] = args.DeepClone();
            config["quantization_config"] = new JsonObject
            {
                ["config_groups"] = new JsonObject { ["group_0"] = group },
                ["ignore"] = Strings(excluded), ["quant_algo"] = algo, ["producer"] = producer.DeepClone(), ["quant_method"] = "modelopt",
            };
            var hf = new JsonObject
            {
                ["producer"] = producer,
                ["quantization"] = new JsonObject
                {
                    ["quant_algo"] = algo, ["kv_cache_quant_algo"] = null, ["group_size"] = 16, ["exclude_modules"] = Strings(excluded),
                },
            };
            File.WriteAllText(Path.Combine(target, "hf_quant_config.json"), hf.ToJsonString());
        }
        else
        {
            JsonObject Args(JsonNode dynamic) => new()
            {
                ["num_bits"] = 4, ["type"] = "float", ["strategy"] = "tensor_group", ["group_size"] = 16, ["symmetric"] = true, ["dynamic"] = dynamic,
            };
            var group = new JsonObject { ["targets"] = new JsonArray("Linear"), ["weights"] = Args(false), ["input_activations"] = weightOnly ? null : Args("local") };
            config["quantization_config"] = new JsonObject
            {
                ["config_groups"] = new JsonObject { ["group_0"] = group }, ["format"] = "nvfp4-pack-quantized",
                ["quant_method"] = "compressed-tensors", ["quantization_status"] = "compressed", ["ignore"] = Strings(excluded),
            };
        }
        File.WriteAllText(Path.Combine(target, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static JsonArray Strings(IEnumerable<string> items) => new(items.Select(i => (JsonNode)i).ToArray());

    /// <summary>One weight to quantize: a 2-D source matrix (a whole tensor or one expert's part of a fused one).</summary>
    private sealed record Unit(string Name, TensorRef Source, long Offset, long Rows, long Cols)
    {
        public byte[] Bytes() => Source.File.ToArray(Source.Info, Offset, (int)(Rows * Cols * DTypes.SizeOf(Source.Info.DType)));

        public float Amax() => global::ModelOptPS.Engine.Numerics.Amax.ComputeFinite(Name, Bytes(), Source.Info.DType);

        private string Parent => Name[..Name.LastIndexOf('.')];

        private string Leaf => ModuleClassifier.LastComponent(Name);

        /// <summary>
        /// Quantized Linears that read one input share one weight_scale_2: q/k/v, gate/up (w1/w3), and the
        /// linear-attention input projections (Qwen3.5 in_proj_qkv/z, with b/a when quantized; Qwen3-Next
        /// in_proj_qkvz with in_proj_ba); everything else stands alone.
        /// </summary>
        public string WeightGroup => Leaf switch
        {
            "q_proj" or "k_proj" or "v_proj" => Parent + ":qkv",
            "gate_proj" or "up_proj" or "w1" or "w3" => Parent + ":gate_up",
            "in_proj_qkv" or "in_proj_z" or "in_proj_b" or "in_proj_a" or "in_proj_qkvz" or "in_proj_ba" => Parent + ":linear_attn",
            _ => Name,
        };

        /// <summary>Fused shards share an input scale; all experts of a layer share one per projection.</summary>
        public string InputGroup
        {
            get
            {
                int experts = Name.IndexOf(".experts.", StringComparison.Ordinal);
                if (experts < 0) return WeightGroup;
                return Name[..experts] + (Leaf is "down_proj" or "w2" ? ":down" : ":gate_up");
            }
        }
    }
}
