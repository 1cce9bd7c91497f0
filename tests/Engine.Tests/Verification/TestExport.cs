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
/// A small ModelOpt/compressed-tensors writer for the verifier's own tests, written from the contract and ModelOpt's
/// formulas and independent of the product's exporter (so verifier tests do not depend on it). <see cref="Write"/>:
/// NVFP4 on every language-model Linear except lm_head and (unless asked to) the linear-attention a/b projections,
/// fused experts split, the global and input scales of the Linears that read one input shared (q/k/v; gate/up; the
/// linear-attention input projections) and each expert set's input scales, every other Linear listed by exact name,
/// in either layout. <see cref="WriteModelOpt"/>: any per-module mix of NVFP4, W4A16_NVFP4 and FP8 (one format:
/// that quant_algo; several: MIXED_PRECISION with quantized_layers) and an FP8 KV cache, as ModelOpt writes them.
/// Whole tensors in memory: for the tiny generated checkpoints only.
/// </summary>
internal static class TestExport
{
    public const string Nvfp4 = "NVFP4";
    public const string W4A16 = "W4A16_NVFP4";
    public const string Fp8 = "FP8";

    /// <param name="quantizeLinearAttentionBa">Also quantize in_proj_b/in_proj_a (Qwen3-Next in_proj_ba), which the contract leaves unquantized.</param>
    public static string Write(string source, string target, QuantFormat format, bool weightOnly = false, long maxShardBytes = 150_000,
        bool quantizeLinearAttentionBa = false) =>
        WriteAll(source, target, format, module => IsQuantized(module, quantizeLinearAttentionBa) || IsSplitExperts(module) ? (weightOnly ? W4A16 : Nvfp4) : null,
            KvCacheWrite.None, maxShardBytes);

    /// <summary>
    /// A ModelOpt checkpoint whose language-model Linears and fused experts containers get the algorithm
    /// <paramref name="algoOf"/> names (null: unquantized; other modules are copied), with an FP8 KV cache in
    /// <paramref name="kv"/>'s mode.
    /// </summary>
    public static string WriteModelOpt(string source, string target, Func<ModelModule, string?> algoOf, KvCacheWrite kv = KvCacheWrite.None,
        long maxShardBytes = 150_000) =>
        WriteAll(source, target, QuantFormat.ModelOpt, module => module.Section == ModelSection.Text && module.Kind is ModuleKind.Linear || IsSplitExperts(module)
            ? algoOf(module) : null, kv, maxShardBytes);

    private static string WriteAll(string source, string target, QuantFormat format, Func<ModelModule, string?> algoOf, KvCacheWrite kv, long maxShardBytes)
    {
        Directory.CreateDirectory(target);
        using var reader = CheckpointReader.Open(source);
        var modules = InventoryBuilder.Build(reader.Tensors.Values.Select(t => t.Info), ArchitectureSpec.Unknown);
        var units = new List<Unit>();
        var copies = new List<StoredTensor>();
        var excluded = new List<string>();
        var layers = new List<(string Name, string Algo)>();
        foreach (var module in modules)
        {
            string? algo = algoOf(module);
            foreach (var (parameter, info) in module.Parameters)
            {
                var tensor = reader.Tensors[info.Name];
                if (IsSplitExperts(module)) units.AddRange(Split(module.Name, parameter, tensor, algo));
                else if (algo is not null && parameter == "weight") units.Add(new Unit(module.Name, tensor, 0, info.Shape[0], info.Shape[1], algo));
                else copies.Add(Copy(tensor));
            }
            if (algo is not null) layers.Add((module.Name, algo));
            else if (module.Kind is ModuleKind.Linear or ModuleKind.Router || module.Kind == ModuleKind.FusedExperts && !IsSplitExperts(module))
                excluded.Add(module.Name);
        }
        var naming = format == QuantFormat.CompressedTensors
            ? (Packed: "weight_packed", Global: "weight_global_scale", Input: "input_global_scale", Scalar: new long[] { 1 })
            : (Packed: "weight", Global: "weight_scale_2", Input: "input_scale", Scalar: []);
        bool reciprocal = format == QuantFormat.CompressedTensors;
        var groupAmax = units.Where(u => u.Algo is not null).GroupBy(u => u.Algo == Fp8 ? u.Fp8WeightGroup : u.WeightGroup)
            .ToDictionary(g => g.Key, g => g.Max(u => u.Amax()));
        var tensors = new List<StoredTensor>(copies);
        foreach (var unit in units)
        {
            if (unit.Algo is null)
            {
                tensors.Add(new StoredTensor($"{unit.Name}.weight", unit.Source.Info.DType, [unit.Rows, unit.Cols], unit.Bytes()));
                continue;
            }
            if (unit.Algo == Fp8)
            {
                tensors.AddRange(Fp8Tensors(unit, groupAmax[unit.Fp8WeightGroup]));
                continue;
            }
            var packed = new byte[unit.Rows * unit.Cols / 2];
            var scales = new byte[unit.Rows * unit.Cols / 16];
            var result = global::ModelOptPS.Engine.Numerics.Nvfp4.Quantize(unit.Name, unit.Bytes(), unit.Source.Info.DType, (int)unit.Rows, (int)unit.Cols, packed, scales,
                new Nvfp4Options { GlobalAmax = groupAmax[unit.WeightGroup] });
            tensors.Add(new StoredTensor($"{unit.Name}.{naming.Packed}", DType.U8, [unit.Rows, unit.Cols / 2], packed));
            tensors.Add(new StoredTensor($"{unit.Name}.weight_scale", DType.F8_E4M3, [unit.Rows, unit.Cols / 16], scales));
            tensors.Add(Scalar($"{unit.Name}.{naming.Global}", result.WeightScale2, reciprocal, naming.Scalar));
            if (unit.Algo != W4A16)
                tensors.Add(Scalar($"{unit.Name}.{naming.Input}", GlobalScale.InputScale(InputAmax(unit.InputGroup), unit.Name), reciprocal, naming.Scalar));
        }
        if (kv == KvCacheWrite.Fp8Scaled) tensors.AddRange(KvScales(modules));
        StoredTensor.WriteCheckpoint(target, tensors, maxShardBytes);
        var algos = layers.Select(l => l.Algo).Distinct().ToList();
        if (format == QuantFormat.CompressedTensors)
            WriteCompressedTensorsConfig(reader.Config, target, algos.SequenceEqual([W4A16]), excluded.Order(StringComparer.Ordinal).ToList());
        else
            WriteModelOptConfigs(reader.Config, target, algos, layers, kv, excluded.Order(StringComparer.Ordinal).ToList());
        foreach (var file in Directory.EnumerateFiles(source).Where(f => !f.EndsWith(".safetensors") && !f.EndsWith(".index.json") && Path.GetFileName(f) != "config.json"))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    private static bool IsSplitExperts(ModelModule module) => module.Kind == ModuleKind.FusedExperts && module.Section == ModelSection.Text;

    private static bool IsQuantized(ModelModule module, bool linearAttentionBa)
    {
        string last = ModuleClassifier.LastComponent(module.Name);
        return module.Kind == ModuleKind.Linear && module.Section == ModelSection.Text && last != "lm_head"
            && (linearAttentionBa || !last.StartsWith("in_proj_a", StringComparison.Ordinal) && !last.StartsWith("in_proj_b", StringComparison.Ordinal))
            && module.Shape[1] % 16 == 0;
    }

    /// <summary>
    /// ModelOpt's FP8 per-tensor export (quant_utils get_scaling_factor / to_quantized_weight), CPU order:
    /// weight_scale = (float)((double)amax / 448), codes = e4m3(T(fl32(w / weight_scale))) with T the source dtype,
    /// input_scale = activation amax / 448.
    /// </summary>
    private static IEnumerable<StoredTensor> Fp8Tensors(Unit unit, float amax)
    {
        float scale = (float)((amax == 0 ? 1.0 : amax) / 448.0);
        var dtype = unit.Source.Info.DType;
        var bytes = unit.Bytes();
        var codes = new byte[unit.Rows * unit.Cols];
        for (int i = 0; i < codes.Length; i++)
        {
            float w = dtype switch
            {
                DType.BF16 => Widening.Bf16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2))),
                DType.F16 => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2))),
                _ => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4)),
            };
            float quotient = w / scale;
            float rounded = dtype switch
            {
                DType.BF16 => BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(quotient) + 0x7FFFu + ((BitConverter.SingleToUInt32Bits(quotient) >> 16) & 1u)) & 0xFFFF0000u),
                DType.F16 => (float)(Half)quotient,
                _ => quotient,
            };
            codes[i] = E4M3.FromFloat(rounded);
        }
        yield return new StoredTensor($"{unit.Name}.weight", DType.F8_E4M3, [unit.Rows, unit.Cols], codes);
        yield return Scalar($"{unit.Name}.weight_scale", scale, reciprocal: false, []);
        yield return Scalar($"{unit.Name}.input_scale", InputAmax(unit.InputGroup) / 448f, reciprocal: false, []);
    }

    /// <summary>Calibrated FP8 KV cache: k_scale and v_scale on every language-model attention block with k_proj and v_proj.</summary>
    private static IEnumerable<StoredTensor> KvScales(IReadOnlyList<ModelModule> modules)
    {
        var names = modules.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var k in modules.Where(m => m.Section == ModelSection.Text && ModuleClassifier.LastComponent(m.Name) == "k_proj"))
        {
            string attention = k.Name[..k.Name.LastIndexOf('.')];
            if (!names.Contains(attention + ".v_proj")) continue;
            yield return Scalar($"{attention}.k_proj.k_scale", InputAmax(attention + ":k") / 448f, reciprocal: false, []);
            yield return Scalar($"{attention}.v_proj.v_scale", InputAmax(attention + ":v") / 448f, reciprocal: false, []);
        }
    }

    private static IEnumerable<Unit> Split(string experts, string parameter, TensorRef tensor, string? algo)
    {
        var shape = tensor.Info.Shape;
        long bytes = shape[1] * shape[2] * DTypes.SizeOf(tensor.Info.DType);
        for (int e = 0; e < shape[0]; e++)
        {
            if (parameter == "gate_up_proj")
            {
                yield return new Unit($"{experts}.{e}.gate_proj", tensor, e * bytes, shape[1] / 2, shape[2], algo);
                yield return new Unit($"{experts}.{e}.up_proj", tensor, e * bytes + bytes / 2, shape[1] / 2, shape[2], algo);
            }
            else
            {
                yield return new Unit($"{experts}.{e}.down_proj", tensor, e * bytes, shape[1], shape[2], algo);
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

    private static readonly JsonObject Producer = new() { ["name"] = "modelopt", ["version"] = "test" };

    /// <summary>ModelOpt's per-layer config (process_layer_quant_config).</summary>
    private static JsonObject LayerConfig(string algo) =>
        algo == Fp8 ? new JsonObject { ["quant_algo"] = algo } : new JsonObject { ["quant_algo"] = algo, ["group_size"] = 16 };

    /// <summary>A config group's args for one algorithm (convert_hf_config.py _quant_algo_to_group_config).</summary>
    private static JsonObject GroupConfig(string algo)
    {
        JsonObject Args(int bits) => algo == Fp8
            ? new JsonObject { ["dynamic"] = false, ["num_bits"] = bits, ["type"] = "float" }
            : new JsonObject { ["dynamic"] = false, ["num_bits"] = bits, ["type"] = "float", ["group_size"] = 16 };
        int bits = algo == Fp8 ? 8 : 4;
        var group = new JsonObject();
        if (algo != W4A16) group["input_activations"] = Args(bits);
        group["weights"] = Args(bits);
        return group;
    }

    private static JsonObject BaseConfig(ModelConfig source)
    {
        var config = source.Root.DeepClone().AsObject();
        if (source.Architecture is null)
            config["architectures"] = new JsonArray(ArchitectureRegistry.Resolve(null, source.ModelType, source.TextModelType).Architecture);
        return config;
    }

    /// <summary>hf_quant_config.json and config.json quantization_config as ModelOpt writes them (get_quant_config, convert_hf_quant_config_format).</summary>
    private static void WriteModelOptConfigs(ModelConfig source, string target, List<string> algos, List<(string Name, string Algo)> layers, KvCacheWrite kv,
        List<string> excluded)
    {
        var config = BaseConfig(source);
        string? kvAlgo = kv == KvCacheWrite.None ? null : Fp8;
        var section = new JsonObject();
        var quantConfig = new JsonObject();
        if (algos.Count == 1)
        {
            section["quant_algo"] = algos[0];
            section["kv_cache_quant_algo"] = kvAlgo;
            if (algos[0] != Fp8) section["group_size"] = 16;
            section["exclude_modules"] = Strings(excluded);
            var group = GroupConfig(algos[0]);
            group["targets"] = new JsonArray("Linear");
            quantConfig["config_groups"] = new JsonObject { ["group_0"] = group };
            quantConfig["ignore"] = Strings(excluded);
        }
        else
        {
            var quantized = new JsonObject();
            foreach (var (name, algo) in layers) quantized[name] = LayerConfig(algo);
            section["quant_algo"] = "MIXED_PRECISION";
            section["kv_cache_quant_algo"] = kvAlgo;
            section["quantized_layers"] = quantized;
            var groups = new JsonObject();
            foreach (var algo in layers.Select(l => l.Algo).Distinct())
            {
                var group = GroupConfig(algo);
                group["targets"] = Strings(layers.Where(l => l.Algo == algo).Select(l => l.Name).Order(StringComparer.Ordinal));
                groups[$"group_{groups.Count}"] = group;
            }
            quantConfig["config_groups"] = groups;
            quantConfig["quantized_layers"] = quantized.DeepClone();
            quantConfig["ignore"] = new JsonArray();
        }
        quantConfig["quant_algo"] = section["quant_algo"]!.DeepClone();
        if (kvAlgo is not null) quantConfig["kv_cache_scheme"] = new JsonObject { ["dynamic"] = false, ["num_bits"] = 8, ["type"] = "float" };
        quantConfig["producer"] = Producer.DeepClone();
        quantConfig["quant_method"] = "modelopt";
        config["quantization_config"] = quantConfig;
        var hf = new JsonObject { ["producer"] = Producer.DeepClone(), ["quantization"] = section };
        File.WriteAllText(Path.Combine(target, "hf_quant_config.json"), hf.ToJsonString());
        File.WriteAllText(Path.Combine(target, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static void WriteCompressedTensorsConfig(ModelConfig source, string target, bool weightOnly, List<string> excluded)
    {
        var config = BaseConfig(source);
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
        File.WriteAllText(Path.Combine(target, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static JsonArray Strings(IEnumerable<string> items) => new(items.Select(i => (JsonNode)i).ToArray());

    /// <summary>One weight to quantize: a 2-D source matrix (a whole tensor or one expert's part of a fused one).</summary>
    /// <param name="Algo">NVFP4, W4A16_NVFP4, FP8, or null for an expert written unquantized.</param>
    private sealed record Unit(string Name, TensorRef Source, long Offset, long Rows, long Cols, string? Algo)
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

        /// <summary>
        /// FP8 weights are not grouped (ModelOpt's _fuse_shared_input_modules skips FP8), except a fused expert's gate
        /// and up, which one weight quantizer of gate_up_proj[e] covers.
        /// </summary>
        public string Fp8WeightGroup => Source.Info.Rank == 3 && Leaf is "gate_proj" or "up_proj" ? Parent + ":gate_up" : Name;

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

/// <summary>How <see cref="TestExport.WriteModelOpt"/> writes the KV cache.</summary>
internal enum KvCacheWrite
{
    /// <summary>kv_cache_quant_algo null.</summary>
    None,

    /// <summary>kv_cache_quant_algo FP8, no k/v scales (ModelOpt's default cast mode).</summary>
    Fp8Cast,

    /// <summary>kv_cache_quant_algo FP8 with k_scale and v_scale on every attention block.</summary>
    Fp8Scaled,
}
