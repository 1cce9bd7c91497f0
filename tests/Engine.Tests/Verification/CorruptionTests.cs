using System.Buffers.Binary;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// Corrupts a valid export one way at a time (issue 5's list) and checks that the verifier names the place and the
/// specific reason, on checkpoints from both the verifier's own writer and the product's exporter.
/// </summary>
public sealed class CorruptionTests(CorruptionBaselines baselines, ITestOutputHelper output) : IClassFixture<CorruptionBaselines>
{
    private const string L = "model.language_model.layers.";
    private const string OProj = L + "3.self_attn.o_proj";
    private const string QProj = L + "3.self_attn.q_proj";
    private const string KProj = L + "3.self_attn.k_proj";
    private const string VProj = L + "3.self_attn.v_proj";
    private const string Experts = L + "0.mlp.experts";
    private const string InProjZ = L + "0.linear_attn.in_proj_z";
    private const string Norm = "model.language_model.norm";

    /// <summary>
    /// How to break a checkpoint, and where and how the verifier must say so. Unless <paramref name="Spreads"/>, that
    /// check must be the only failure (no collateral noise).
    /// </summary>
    private sealed record Corruption(Action<CheckpointEditor, string> Apply, CheckScope Scope, string Name, string Id,
        string Family = "qwen3_5_moe", QuantFormat Format = QuantFormat.ModelOpt, string? Says = null, bool Spreads = false);

    private static readonly Dictionary<string, Corruption> All = new()
    {
        ["bf16 module"] = new(ToSource(OProj), CheckScope.Module, OProj, VerificationIds.NotQuantized, Says: "still BF16 [64, 64]"),
        ["nothing quantized"] = new(SourceShards, CheckScope.Checkpoint, "export", VerificationIds.NothingQuantized, Spreads: true),
        ["no weight_scale_2"] = new(Drop(QProj + ".weight_scale_2"), CheckScope.Module, QProj, VerificationIds.MissingWeightScale2),
        ["no input_scale"] = new(Drop(OProj + ".input_scale"), CheckScope.Module, OProj, VerificationIds.MissingInputScale),
        ["NaN scale"] = new(SetScalar(OProj + ".weight_scale_2", float.NaN), CheckScope.Module, OProj, VerificationIds.InvalidScale, Says: "is NaN"),
        ["infinite input_scale"] = new(SetScalar(OProj + ".input_scale", float.PositiveInfinity), CheckScope.Module, OProj, VerificationIds.InvalidScale, Says: "infinite"),
        ["zero input_scale"] = new(SetScalar(OProj + ".input_scale", 0f), CheckScope.Module, OProj, VerificationIds.InvalidScale, Says: "is zero"),
        ["negative scale"] = new(SetScalar(OProj + ".weight_scale_2", -1e-4f), CheckScope.Module, OProj, VerificationIds.InvalidScale, Says: "negative"),
        ["NaN block scale"] = new(Bytes(OProj + ".weight_scale", d => d[5] = 0x7F), CheckScope.Module, OProj, VerificationIds.NaNBlockScale, Says: "[1, 1]"),
        ["bf16 weight_scale_2"] = new(ToBf16Scalar(OProj + ".weight_scale_2"), CheckScope.Module, OProj, VerificationIds.WrongDType, Says: "is BF16"),
        ["wrong block-scale shape"] = new(Reshape(OProj + ".weight_scale", [128, 2]), CheckScope.Module, OProj, VerificationIds.WrongShape, Says: "[64, 4]"),
        ["q/k weight_scale_2 differ"] = new(ScaleScalar(KProj + ".weight_scale_2", 2f), CheckScope.Module, KProj, VerificationIds.MergedLayerScaleMismatch, Says: "weight_scale_2"),
        ["q/k/v input_scale differ"] = new(ScaleScalar(VProj + ".input_scale", 1.5f), CheckScope.Module, VProj, VerificationIds.MergedLayerInputScaleMismatch, Says: "input_scale"),
        ["in_proj_qkv/z weight_scale_2 differ"] = new(ScaleScalar(InProjZ + ".weight_scale_2", 2f), CheckScope.Module, InProjZ,
            VerificationIds.MergedLayerScaleMismatch, Says: "in_proj_qkvz", Spreads: true),
        ["in_proj_z left unquantized"] = new((e, source) => { e.RestoreSource(InProjZ, source); e.Exclusions(list => list.Add(InProjZ)); },
            CheckScope.Module, InProjZ, VerificationIds.MergedLayerMixedPrecision, Says: "in_proj_qkvz"),
        ["w1/w3 weight_scale_2 differ"] = new(ScaleScalar("model.layers.1.block_sparse_moe.experts.2.w3.weight_scale_2", 2f), CheckScope.Module,
            "model.layers.1.block_sparse_moe.experts.2.w3", VerificationIds.MergedLayerScaleMismatch, Family: "mixtral", Spreads: true),
        ["one expert's input_scale differs"] = new(ScaleScalar(Experts + ".3.down_proj.input_scale", 1.5f), CheckScope.Module,
            Experts + ".3.down_proj", VerificationIds.ExpertInputScaleMismatch),
        ["bogus exclude entry"] = new(Exclude(list => list.Add("model.language_model.layers.9.mlp.gate")), CheckScope.Exclusion,
            "model.language_model.layers.9.mlp.gate", VerificationIds.ExcludeMatchesNothing),
        ["unlisted unquantized Linear"] = new(Exclude(list => list.Remove(list.First(e => e!.GetValue<string>() == "lm_head"))), CheckScope.Module,
            "lm_head", VerificationIds.UnlistedUnquantizedLinear),
        ["excluded but quantized"] = new(Exclude(list => list.Add(OProj)), CheckScope.Module, OProj, VerificationIds.ExcludedButQuantized),
        ["index names a missing tensor"] = new(Index(map => map[L + "0.mlp.bogus.weight"] = map[Norm + ".weight"]!.GetValue<string>()), CheckScope.Index,
            CheckpointWriter.IndexFileName, VerificationIds.IndexTensorMissing, Says: "bogus"),
        ["index names a missing file"] = new(Index(map => map[Norm + ".weight"] = "model-00009-of-00009.safetensors"), CheckScope.Index,
            CheckpointWriter.IndexFileName, ErrorIds.IndexShardMissing, Says: "model-00009-of-00009.safetensors", Spreads: true),
        ["tensor in no index entry"] = new(ExtraTensor, CheckScope.Index, CheckpointWriter.IndexFileName, VerificationIds.TensorNotInIndex, Says: "extra", Spreads: true),
        ["truncated shard"] = new(Truncate, CheckScope.Shard, "model-00001-of-00004.safetensors", ErrorIds.SafetensorsTruncated, Spreads: true),
        ["swapped nibbles"] = new(Bytes(OProj + ".weight", d => { for (int i = 0; i < d.Length; i++) d[i] = (byte)(d[i] << 4 | d[i] >> 4); }),
            CheckScope.Module, OProj, VerificationIds.NibblesSwapped),
        ["transposed block scales"] = new(Bytes(OProj + ".weight_scale", Transpose(64, 4)), CheckScope.Module, OProj, VerificationIds.BlockScalesTransposed),
        ["swapped gate/up halves"] = new((e, _) => e.SwapModules(Experts + ".2.gate_proj", Experts + ".2.up_proj"), CheckScope.Module,
            Experts + ".2.gate_proj", VerificationIds.WeightsOfOtherModule, Says: "rows [32, 64)", Spreads: true),
        ["experts out of order"] = new(SwapExperts(1, 2), CheckScope.Module, Experts + ".1.down_proj", VerificationIds.WeightsOfOtherModule,
            Says: "down_proj'[2]", Spreads: true),
        ["modified unquantized tensor"] = new(Bytes(Norm + ".weight", d => d[10] ^= 0x40), CheckScope.Module, Norm, VerificationIds.TensorModified,
            Says: "element 5"),
        ["dropped tensor"] = new(Drop(L + "0.input_layernorm.weight"), CheckScope.Module, L + "0.input_layernorm", VerificationIds.TensorMissing),
        ["fused experts not split"] = new(Unsplit, CheckScope.Module, Experts, VerificationIds.FusedExpertsNotSplit),
        ["config changed"] = new(Config(c => c["text_config"]!["rms_norm_eps"] = 1e-3), CheckScope.Config, "config.json", VerificationIds.ConfigChanged,
            Says: "'text_config'"),
        ["architectures null"] = new(Config(c => c["architectures"] = null), CheckScope.Config, "config.json", VerificationIds.ArchitecturesMissing),
        ["CT global scale not reciprocal"] = new((e, _) => e.Scalar(OProj + ".weight_global_scale", 1f / e.ReadScalar(OProj + ".weight_global_scale")),
            CheckScope.Module, OProj, VerificationIds.WeightScale2Mismatch, Format: QuantFormat.CompressedTensors),
        ["CT no weight_global_scale"] = new(Drop(QProj + ".weight_global_scale"), CheckScope.Module, QProj, VerificationIds.MissingWeightScale2,
            Format: QuantFormat.CompressedTensors, Says: "weight_global_scale"),
        ["CT bogus ignore entry"] = new(Exclude(list => list.Add("re:.*visual_typo.*")), CheckScope.Exclusion, "re:.*visual_typo.*",
            VerificationIds.ExcludeMatchesNothing, Format: QuantFormat.CompressedTensors),
    };

    public static TheoryData<string, Producer> Cases()
    {
        var data = new TheoryData<string, Producer>();
        foreach (var (name, corruption) in All)
        {
            data.Add(name, Producer.TestExport);
            // The product's compressed-tensors export of this family fails on its own (see ExporterVerificationTests).
            if (corruption.Format == QuantFormat.ModelOpt) data.Add(name, Producer.Exporter);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void NamesTheCorruption(string corruption, Producer producer)
    {
        var c = All[corruption];
        using var tmp = new TempFolder();
        var (source, export) = baselines.Copy(c.Family, c.Format, producer, tmp.Combine("export"));
        Assert.True(QuantFormatVerifier.Verify(export, source).Passed, "the baseline must pass before it is corrupted");

        c.Apply(new CheckpointEditor(export), source);
        var report = QuantFormatVerifier.Verify(export, source);

        foreach (var check in report.Failures) output.WriteLine(check.ToString());
        Assert.False(report.Passed);
        var named = Assert.Single(report.Checks, x => x.Scope == c.Scope && x.Name == c.Name);
        Assert.Equal(CheckStatus.Fail, named.Status);
        var issue = Assert.Single(named.Issues, i => i.Id == c.Id);
        if (c.Says is not null) Assert.Contains(c.Says, issue.Message, StringComparison.Ordinal);
        if (!c.Spreads) Assert.Same(named, Assert.Single(report.Failures));
    }

    private static Action<CheckpointEditor, string> Drop(string tensor) => (e, _) => e.Tensors(list => list.RemoveAll(t => t.Name == tensor));

    private static Action<CheckpointEditor, string> SetScalar(string tensor, float value) => (e, _) => e.Scalar(tensor, value);

    private static Action<CheckpointEditor, string> ScaleScalar(string tensor, float factor) => (e, _) => e.Scalar(tensor, e.ReadScalar(tensor) * factor);

    private static Action<CheckpointEditor, string> Bytes(string tensor, Action<byte[]> change) =>
        (e, _) => e.Tensor(tensor, t =>
        {
            var data = t.Data.ToArray();
            change(data);
            return t with { Data = data };
        });

    private static Action<byte[]> Transpose(int rows, int cols) => data =>
    {
        var copy = data.ToArray();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) data[c * rows + r] = copy[r * cols + c];
    };

    private static Action<CheckpointEditor, string> Reshape(string tensor, long[] shape) => (e, _) => e.Tensor(tensor, t => t with { Shape = shape });

    private static Action<CheckpointEditor, string> ToBf16Scalar(string tensor) =>
        (e, _) => e.Tensor(tensor, t => t with { DType = DType.BF16, Data = t.Data[2..] });

    private static Action<CheckpointEditor, string> Exclude(Action<JsonArray> edit) => (e, _) => e.Exclusions(edit);

    private static Action<CheckpointEditor, string> Index(Action<JsonObject> edit) =>
        (e, _) => e.Json(CheckpointWriter.IndexFileName, root => edit(root["weight_map"]!.AsObject()));

    private static Action<CheckpointEditor, string> Config(Action<JsonObject> edit) => (e, _) => e.Json("config.json", edit);

    private static Action<CheckpointEditor, string> SwapExperts(int a, int b) =>
        (e, _) =>
        {
            foreach (var projection in new[] { "gate_proj", "up_proj", "down_proj" })
                e.SwapModules($"{Experts}.{a}.{projection}", $"{Experts}.{b}.{projection}");
        };

    /// <summary>The seed's failure: the module's NVFP4 tensors replaced by the source's BF16 weight.</summary>
    private static Action<CheckpointEditor, string> ToSource(string module) => (e, source) => e.RestoreSource(module, source);

    /// <summary>Fused experts left 3-D in the language model: layer 0's per-expert tensors replaced by the source's fused ones.</summary>
    private static void Unsplit(CheckpointEditor e, string source)
    {
        using var reader = CheckpointReader.Open(source);
        var fused = new[] { "gate_up_proj", "down_proj" }.Select(p => reader.GetTensor($"{Experts}.{p}"))
            .Select(t => new StoredTensor(t.Name, t.Info.DType, t.Info.Shape, t.File.ToArray(t.Info))).ToList();
        e.Tensors(list =>
        {
            string shard = list.First(t => t.Name.StartsWith(Experts + ".", StringComparison.Ordinal)).Shard;
            list.RemoveAll(t => t.Name.StartsWith(Experts + ".", StringComparison.Ordinal));
            list.AddRange(fused.Select(f => f with { Shard = shard }));
        });
    }

    /// <summary>Every quantized tensor gone: the source's shards under the export's quantization config.</summary>
    private static void SourceShards(CheckpointEditor e, string source)
    {
        foreach (var file in Directory.EnumerateFiles(e.Folder, "*.safetensors").Append(e.IndexPath).Where(File.Exists)) File.Delete(file);
        foreach (var file in Directory.EnumerateFiles(source).Where(f => f.EndsWith(".safetensors") || f.EndsWith(".index.json")))
            File.Copy(file, Path.Combine(e.Folder, Path.GetFileName(file)));
    }

    private static void ExtraTensor(CheckpointEditor e, string _)
    {
        var data = new byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(data, 1f);
        string shard = e.ShardOf(Norm + ".weight");
        e.Tensors(list => list.Add(new StoredTensor(L + "0.extra.weight", DType.F32, [1], data) { Shard = shard }), rebuildIndex: false);
    }

    private static void Truncate(CheckpointEditor e, string _)
    {
        using var file = File.OpenWrite(Path.Combine(e.Folder, "model-00001-of-00004.safetensors"));
        file.SetLength(file.Length - 64);
    }
}
