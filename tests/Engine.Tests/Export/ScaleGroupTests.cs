using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// The scale groups derived from the forward engine are exactly the contract's (checkpoint-contract.md, "Shared
/// scales"), stated here by name, independently: q/k/v; gate/up of a dense MLP, a shared expert or an expert (Mixtral
/// w1/w3); Qwen3.5's in_proj_qkv/z (all four with b/a when quantized); Qwen3-Next's in_proj_qkvz with in_proj_ba when
/// both are quantized; everything else alone. And the export writes them: one weight_scale_2 and input_scale per group,
/// block scales against the shared value.
/// </summary>
public class ScaleGroupTests : IDisposable
{
    private const string LinearAttentionBA = "*linear_attn.in_proj_[ab]*";

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in ForwardFamilies.Names)
        foreach (var preset in new[] { "NVFP4_DEFAULT", "W4A16_NVFP4" })
            data.Add(family, preset);
        return data;
    }

    private HFModel Planned(string family, string preset, string[]? include = null, string[]? exclude = null)
    {
        var model = ModelImporter.Import(ForwardFamilies.Write(family, _tmp.Combine($"{family}-{Guid.NewGuid():N}")));
        var recipe = Presets.Get(preset).WithModulePatterns(include ?? [], exclude ?? [], QuantizerFormat.Nvfp4, Presets.IsWeightOnly(preset));
        model.Plan = QuantPlanner.Plan(model, recipe);
        if (model.Plan.NeedsCalibration) model.Statistics = SyntheticStatistics.For(model);
        return model;
    }

    /// <summary>The contract's weight group of a unit, by name; members are also quantized alike.</summary>
    private static string ExpectedWeightGroup(WeightUnit u) => u.Role switch
    {
        "q_proj" or "k_proj" or "v_proj" => $"{u.Parent} q/k/v",
        "gate_proj" or "up_proj" => $"{u.Parent} gate/up",
        "in_proj_qkv" or "in_proj_z" or "in_proj_b" or "in_proj_a" or "in_proj_qkvz" or "in_proj_ba" => $"{u.Parent} in_proj",
        _ => u.OutputPrefix,
    } + $" {u.Decision}";

    /// <summary>The contract's input group: the weight group, widened to every expert of the layer per projection.</summary>
    private static string ExpectedInputGroup(WeightUnit u) =>
        u.ExpertsContainer is { } experts ? $"{experts} {(u.Role == "down_proj" ? "down" : "gate/up")}" : ExpectedWeightGroup(u);

    private static List<string> Canonical(IEnumerable<IEnumerable<string>> groups) =>
        groups.Select(g => string.Join(" + ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();

    private static void AssertGroups(HFModel model, ScaleGroups scales)
    {
        var quantized = WeightUnits.From(model, model.Plan!).Where(u => u.IsQuantized).ToList();
        Assert.Equal(Canonical(quantized.GroupBy(ExpectedWeightGroup).Select(g => g.Select(u => u.OutputPrefix))), Canonical(scales.WeightGroups));
        Assert.Equal(Canonical(quantized.Where(u => u.Decision == QuantDecision.Nvfp4).GroupBy(ExpectedInputGroup).Select(g => g.Select(u => u.OutputPrefix))),
            Canonical(scales.InputGroups));
    }

    private static IReadOnlyList<string> GroupOf(ScaleGroups scales, string module) => scales.WeightGroups.Single(g => g.Contains(module));

    [Theory]
    [MemberData(nameof(Cases))]
    public void DerivedGroupsAreTheContracts(string family, string preset)
    {
        using var model = Planned(family, preset);
        var scales = ScaleGroups.Compute(model, WeightUnits.From(model, model.Plan!), default);
        AssertGroups(model, scales);
        // Spot checks that the rule above is not vacuous for this family.
        var names = scales.WeightGroups.SelectMany(g => g).ToHashSet(StringComparer.Ordinal);
        var q = names.First(n => n.EndsWith(".self_attn.q_proj", StringComparison.Ordinal));
        Assert.Equal(3, GroupOf(scales, q).Count);
        if (names.FirstOrDefault(n => n.EndsWith(".linear_attn.in_proj_qkv", StringComparison.Ordinal)) is { } qkv)
            Assert.Equal([qkv, qkv[..^"qkv".Length] + "z"], GroupOf(scales, qkv).Order(StringComparer.Ordinal));
        if (names.FirstOrDefault(n => n.EndsWith(".linear_attn.in_proj_qkvz", StringComparison.Ordinal)) is { } qkvz)
            Assert.Equal([qkvz], GroupOf(scales, qkvz)); // in_proj_ba is not quantized by the presets
        if (names.FirstOrDefault(n => n.EndsWith(".shared_expert.gate_proj", StringComparison.Ordinal)) is { } shared)
            Assert.Equal(2, GroupOf(scales, shared).Count);
        if (names.FirstOrDefault(n => n.EndsWith(".experts.0.w1", StringComparison.Ordinal)) is { } w1)
            Assert.Equal([w1, w1[..^1] + "3"], GroupOf(scales, w1).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("qwen3_5_moe")]
    [InlineData("qwen3_5")]
    [InlineData("qwen3_next")]
    public void QuantizedLinearAttentionBAJoinTheirLayersGroup(string family)
    {
        using var model = Planned(family, "NVFP4_DEFAULT", include: [LinearAttentionBA]);
        var scales = ScaleGroups.Compute(model, WeightUnits.From(model, model.Plan!), default);
        AssertGroups(model, scales);
        string layer = model.Modules.First(m => m.Name.EndsWith(".linear_attn.out_proj", StringComparison.Ordinal)).Name[..^"out_proj".Length];
        string[] expected = family == "qwen3_next"
            ? [layer + "in_proj_ba", layer + "in_proj_qkvz"]
            : [layer + "in_proj_a", layer + "in_proj_b", layer + "in_proj_qkv", layer + "in_proj_z"];
        Assert.Equal(expected, GroupOf(scales, layer + (family == "qwen3_next" ? "in_proj_qkvz" : "in_proj_qkv")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AFamilyTheForwardEngineDoesNotKnowSharesByMergedLayerNamesAndSaysSo()
    {
        var recipe = TinyCheckpoints.Create("llama");
        recipe.Config["architectures"] = new System.Text.Json.Nodes.JsonArray("FancyNewForCausalLM");
        recipe.Config["model_type"] = "fancy_new";
        using var model = ModelImporter.Import(recipe.Write(_tmp.Combine("fancy")));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4"));
        AssertGroups(model, ScaleGroups.Compute(model, WeightUnits.From(model, model.Plan!), default));
        var result = CheckpointExporter.Export(model, _tmp.Combine("fancy-out"), new ExportOptions());
        Assert.Contains(result.Warnings, w => w.Contains("FancyNewForCausalLM") && w.Contains("inferred by name"));
        var verdict = QuantFormatVerifier.Verify(result.Path, model.Path);
        Assert.True(verdict.Passed, string.Join("\n", verdict.Checks.Where(c => c.Status == CheckStatus.Fail).Prepend((object)verdict.Summary)));
    }

    [Fact]
    public void AKnownFamilyWhoseLayersCannotBePlannedIsRefusedAtExport()
    {
        var recipe = TinyCheckpoints.Create("llama");
        recipe.Config.Remove("num_hidden_layers");
        using var model = ModelImporter.Import(recipe.Write(_tmp.Combine("nolayers")));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4"));
        var ex = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, _tmp.Combine("nolayers-out"), new ExportOptions()));
        Assert.Equal(ExportErrorIds.InputSharingUnknown, ex.ErrorId);
        Assert.Equal(ErrorKind.NotImplemented, ex.Kind);
        Assert.Contains("weight_scale_2", ex.Message);
        Assert.False(Directory.Exists(_tmp.Combine("nolayers-out")));
    }

    [Fact]
    public void AModelWhoseRopeTheForwardEngineLacksStillExportsWithSharedScales()
    {
        // yarn RoPE stops calibration (ForwardNotSupported), not a weight-only export: the shared inputs come from the
        // layers' structure alone.
        var recipe = TinyCheckpoints.Create("qwen3");
        recipe.Config["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 };
        using var model = ModelImporter.Import(recipe.Write(_tmp.Combine("yarn")));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4"));
        var scales = ScaleGroups.Compute(model, WeightUnits.From(model, model.Plan!), default);
        AssertGroups(model, scales);
        var export = CheckpointExporter.Export(model, _tmp.Combine("yarn-out"), new ExportOptions());
        Assert.True(export.QuantizedModules > 0);
    }

    [Theory]
    [InlineData("NVFP4_DEFAULT", true)]
    [InlineData("NVFP4_DEFAULT", false)]
    [InlineData("W4A16_NVFP4", false)]
    public void Qwen35MoeLinearAttentionShardsShareScalesInTheExport(string preset, bool calibrated)
    {
        using var model = Planned("qwen3_5_moe", preset);
        if (calibrated)
        {
            var options = new CalibrationOptions { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 32, Seed = 3 } };
            (model.Statistics, _) = Calibrator.Run(model, options);
        }
        var result = CheckpointExporter.Export(model, _tmp.Combine("out-" + Guid.NewGuid().ToString("N")[..6]), new ExportOptions());
        using var output = CheckpointReader.Open(result.Path);
        var layers = model.Modules.Where(m => m.Name.EndsWith(".linear_attn.in_proj_qkv", StringComparison.Ordinal)).Select(m => m.Name[..^"in_proj_qkv".Length]).ToList();
        Assert.Equal(3, layers.Count);
        foreach (var layer in layers)
        {
            string qkv = layer + "in_proj_qkv", z = layer + "in_proj_z";
            float groupAmax = Math.Max(SourceAmax(model, qkv), SourceAmax(model, z));
            foreach (var m in new[] { qkv, z })
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(GlobalScale.ForWeight(groupAmax)), Bits(output, m + ".weight_scale_2"));
                var source = model.Checkpoint.GetTensor(m + ".weight");
                int rows = (int)source.Info.Shape[0], cols = (int)source.Info.Shape[1];
                var packed = new byte[rows * cols / 2];
                var blockScales = new byte[rows * cols / 16];
                Nvfp4.Quantize(m, source.File.ToArray(source.Info), source.Info.DType, rows, cols, packed, blockScales, new Nvfp4Options { GlobalAmax = groupAmax });
                Assert.Equal(packed, Bytes(output, m + ".weight"));
                Assert.Equal(blockScales, Bytes(output, m + ".weight_scale"));
            }
            if (preset == "W4A16_NVFP4")
            {
                Assert.False(output.Tensors.ContainsKey(qkv + ".input_scale"));
                continue;
            }
            var amax = model.Statistics!.InputAmax;
            // in_proj_z is observed under its own input quantizer (same tensor as in_proj_qkv); the group takes the max.
            Assert.True(amax.ContainsKey(z + ".input_quantizer"));
            float inputAmax = Math.Max(amax[qkv + ".input_quantizer"], amax[z + ".input_quantizer"]);
            Assert.Equal(BitConverter.SingleToUInt32Bits(GlobalScale.FromAmax(inputAmax)), Bits(output, qkv + ".input_scale"));
            Assert.Equal(Bits(output, qkv + ".input_scale"), Bits(output, z + ".input_scale"));
        }
        var verdict = QuantFormatVerifier.Verify(result.Path, model.Path);
        Assert.True(verdict.Passed, string.Join("\n", verdict.Checks.Where(c => c.Status == CheckStatus.Fail).Prepend((object)verdict.Summary)));
    }

    private static float SourceAmax(HFModel model, string module)
    {
        var t = model.Checkpoint.GetTensor(module + ".weight");
        return Amax.Compute(t.File.ToArray(t.Info), t.Info.DType).Amax;
    }

    private static byte[] Bytes(CheckpointReader reader, string name)
    {
        var t = reader.GetTensor(name);
        return t.File.ToArray(t.Info);
    }

    private static uint Bits(CheckpointReader reader, string name) => BitConverter.ToUInt32(Bytes(reader, name));
}
