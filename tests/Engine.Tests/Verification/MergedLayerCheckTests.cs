using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Verification;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// The layers consumers merge (vLLM's packed_modules_mapping and the fused MoE's w13), one kind at a time: a valid
/// export passes, and one shard given another weight_scale_2, another input_scale, or left unquantized is reported
/// with its own id and a reason naming the merged layer and its shards — in both layouts and without -Reference.
/// </summary>
public sealed class MergedLayerCheckTests(CorruptionBaselines baselines, ITestOutputHelper output) : IClassFixture<CorruptionBaselines>
{
    private const string Gdn = "model.language_model.layers.0.linear_attn.";

    /// <summary>A merged layer of a generated family, the shard to break, and how the reason must name the layer.</summary>
    private sealed record Kind(string Family, string Shard, string Names, bool QuantizeBa = false);

    private static readonly Dictionary<string, Kind> Kinds = new()
    {
        ["qkv_proj"] = new("qwen3", "model.layers.0.self_attn.k_proj", "'model.layers.0.self_attn.qkv_proj' (q_proj, k_proj, v_proj)"),
        ["gate_up_proj"] = new("llama", "model.layers.0.mlp.up_proj", "'model.layers.0.mlp.gate_up_proj' (gate_proj, up_proj)"),
        ["shared expert gate_up_proj"] = new("qwen3_next", "model.layers.0.mlp.shared_expert.gate_proj",
            "'model.layers.0.mlp.shared_expert.gate_up_proj' (gate_proj, up_proj)"),
        ["experts w13"] = new("qwen3_moe", "model.layers.1.mlp.experts.2.up_proj", "'model.layers.1.mlp.experts.w13' of expert 2 (gate_proj, up_proj)"),
        ["Mixtral w13"] = new("mixtral", "model.layers.1.block_sparse_moe.experts.2.w3",
            "'model.layers.1.block_sparse_moe.experts.w13' of expert 2 (w1, w3)"),
        ["Qwen3.5 in_proj_qkvz"] = new("qwen3_5_moe", Gdn + "in_proj_z", $"'{Gdn}in_proj_qkvz' (in_proj_qkv, in_proj_z)"),
        ["Qwen3.5 in_proj_ba"] = new("qwen3_5_moe", Gdn + "in_proj_a", $"'{Gdn}in_proj_ba' (in_proj_b, in_proj_a)", QuantizeBa: true),
    };

    /// <summary>How to break the shard (editor, source, shard, layout), and the id that must report it.</summary>
    private static readonly Dictionary<string, (Action<CheckpointEditor, string, string, Nvfp4Naming> Apply, string Id)> Breaks = new()
    {
        ["weight_scale_2 differs"] = ((e, _, m, n) => e.Scalar($"{m}.{n.GlobalScale}", e.ReadScalar($"{m}.{n.GlobalScale}") * 2f),
            VerificationIds.MergedLayerScaleMismatch),
        ["input_scale differs"] = ((e, _, m, n) => e.Scalar($"{m}.{n.InputScale}", e.ReadScalar($"{m}.{n.InputScale}") * 1.5f),
            VerificationIds.MergedLayerInputScaleMismatch),
        ["left unquantized"] = ((e, source, m, _) =>
        {
            e.RestoreSource(m, source);
            e.Exclusions(list => list.Add(m));
        }, VerificationIds.MergedLayerMixedPrecision),
    };

    private static readonly QuantFormat[] Formats = [QuantFormat.ModelOpt, QuantFormat.CompressedTensors];

    public static TheoryData<string, QuantFormat> KindsAndFormats()
    {
        var data = new TheoryData<string, QuantFormat>();
        foreach (var kind in Kinds.Keys)
            foreach (var format in Formats) data.Add(kind, format);
        return data;
    }

    public static TheoryData<string, string, QuantFormat> Cases()
    {
        var data = new TheoryData<string, string, QuantFormat>();
        foreach (var kind in Kinds.Keys)
            foreach (var corruption in Breaks.Keys)
                foreach (var format in Formats) data.Add(kind, corruption, format);
        return data;
    }

    [Theory]
    [MemberData(nameof(KindsAndFormats))]
    public void ValidMergedLayerPasses(string kind, QuantFormat format)
    {
        var k = Kinds[kind];
        using var tmp = new TempFolder();
        var (_, export) = baselines.Copy(k.Family, format, Producer.TestExport, tmp.Combine("export"), k.QuantizeBa);

        var report = QuantFormatVerifier.Verify(export);

        Assert.Empty(UnexpectedFailures(report, k, allowed: null));
        Assert.True(report.Passed, report.Summary); // quantized in_proj_b/a included: upstream quantizes them (NeverQuantized)
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void NamesTheDisagreeingShard(string kind, string corruption, QuantFormat format)
    {
        var k = Kinds[kind];
        var (apply, id) = Breaks[corruption];
        using var tmp = new TempFolder();
        var (source, export) = baselines.Copy(k.Family, format, Producer.TestExport, tmp.Combine("export"), k.QuantizeBa);

        apply(new CheckpointEditor(export), source, k.Shard, Nvfp4Naming.For(format));
        var report = QuantFormatVerifier.Verify(export);

        foreach (var check in report.Failures) output.WriteLine(check.ToString());
        var issue = Assert.Single(Assert.Single(report.Checks, c => c.Scope == CheckScope.Module && c.Name == k.Shard).Issues, i => i.Id == id);
        Assert.Contains(k.Names, issue.Message, StringComparison.Ordinal);
        // Only the merged layer's own shards are reported: no expert-set or other finding for the same problem.
        Assert.Empty(UnexpectedFailures(report, k, id));
    }

    /// <summary>
    /// With -Reference, weight_scale_2 must be the max amax of the Linears that read one input: in_proj_qkvz and
    /// in_proj_ba are two merged layers in vLLM, but one scale group in ModelOpt's export when all four are quantized.
    /// </summary>
    [Theory]
    [InlineData(QuantFormat.ModelOpt)]
    [InlineData(QuantFormat.CompressedTensors)]
    public void LinearAttentionInputProjectionsAreOneScaleGroupWithReference(QuantFormat format)
    {
        using var tmp = new TempFolder();
        var (source, export) = baselines.Copy("qwen3_5_moe", format, Producer.TestExport, tmp.Combine("export"), quantizeLinearAttentionBa: true);
        var editor = new CheckpointEditor(export);
        string global = Nvfp4Naming.For(format).GlobalScale;
        Assert.Single(new[] { "in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a" }.Select(p => editor.ReadScalar($"{Gdn}{p}.{global}")).Distinct());

        var report = QuantFormatVerifier.Verify(export, source);

        foreach (var check in report.Failures) output.WriteLine(check.ToString());
        Assert.True(report.Passed, report.Summary);
    }

    [Fact]
    public void EveryFamilyHasItsTable() =>
        Assert.Equal(ArchitectureRegistry.All.Select(s => s.Family).Order(), MergedLayerTable.Families.Order());

    [Theory]
    [InlineData("model.layers.3.self_attn.v_proj", "Qwen3NextForCausalLM", "'model.layers.3.self_attn.qkv_proj' (q_proj, k_proj, v_proj)")]
    [InlineData("model.layers.0.linear_attn.in_proj_qkvz", "Qwen3NextForCausalLM", "'model.layers.0.linear_attn.in_proj_qkvz' (in_proj_qkvz)")]
    [InlineData("model.layers.0.mlp.experts.7.gate_proj", "Qwen3_5MoeForConditionalGeneration", "'model.layers.0.mlp.experts.w13' of expert 7 (gate_proj, up_proj)")]
    [InlineData("model.layers.0.linear_attn.in_proj_z", "NotAKnownFamily", "'model.layers.0.linear_attn.in_proj_qkvz' (in_proj_qkv, in_proj_z)")]
    [InlineData("model.layers.0.linear_attn.in_proj_z", "LlamaForCausalLM", null)]
    [InlineData("model.layers.0.block_sparse_moe.experts.1.w1", "MixtralForCausalLM", "'model.layers.0.block_sparse_moe.experts.w13' of expert 1 (w1, w3)")]
    [InlineData("model.layers.0.self_attn.o_proj", "MixtralForCausalLM", null)]
    [InlineData("model.layers.0.mlp.experts.1.down_proj", "Qwen3MoeForCausalLM", null)]
    public void FindsTheMergedLayerByFamily(string module, string architecture, string? expected)
    {
        using var tmp = new TempFolder();
        string path = tmp.Combine("config.json");
        File.WriteAllText(path, $$"""{"architectures": ["{{architecture}}"], "model_type": "unknown"}""");

        var layer = MergedLayerTable.For(ModelConfig.Load(path)).Of(module);

        Assert.Equal(expected, layer?.Describe);
    }

    /// <summary>
    /// Failures other than <paramref name="allowed"/> on the merged layer's own shards, and other than the finding
    /// that is a separate problem of the setup: an exclusion entry naming one expert's shard excludes the whole MoE
    /// layer in vLLM, so the other experts are ExcludedButQuantized.
    /// </summary>
    private static List<string> UnexpectedFailures(VerificationReport report, Kind kind, string? allowed)
    {
        var layer = MergedLayerTable.For(null).Of(kind.Shard)!;
        bool Expected(string module, string id) =>
            id == allowed && layer.Shards.Contains(module)
            || layer.Kind.PerExpert && allowed == VerificationIds.MergedLayerMixedPrecision && id == VerificationIds.ExcludedButQuantized;
        return report.Failures.SelectMany(f => f.Issues.Where(i => i.Status == CheckStatus.Fail).Select(i => (f.Name, i.Id)))
            .Where(x => !Expected(x.Name, x.Id))
            .Select(x => $"{x.Name}: {x.Id}").ToList();
    }
}
