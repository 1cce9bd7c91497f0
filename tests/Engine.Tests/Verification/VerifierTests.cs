using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>The verifier on valid checkpoints written by <see cref="TestExport"/>, on a source checkpoint, and on bad folders.</summary>
public sealed class VerifierTests(ITestOutputHelper output)
{
    public static TheoryData<string, QuantFormat, bool> Valid()
    {
        var data = new TheoryData<string, QuantFormat, bool>();
        foreach (var family in TinyCheckpoints.Families)
        {
            data.Add(family, QuantFormat.ModelOpt, false);
            data.Add(family, QuantFormat.CompressedTensors, true);
        }
        data.Add("qwen3_5_moe", QuantFormat.ModelOpt, true);
        data.Add("qwen3_5_moe", QuantFormat.CompressedTensors, false);
        return data;
    }

    [Theory]
    [MemberData(nameof(Valid))]
    public void ValidCheckpointPasses(string family, QuantFormat format, bool weightOnly)
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write(family, tmp.Combine("source"));
        string export = TestExport.Write(source, tmp.Combine("export"), format, weightOnly);

        foreach (var reference in new[] { null, source })
        {
            var report = QuantFormatVerifier.Verify(export, reference);
            foreach (var check in report.Checks.Where(c => c.Status != CheckStatus.Pass)) output.WriteLine(check.ToString());
            Assert.True(report.Passed, report.Summary);
            Assert.Equal(format, report.Format);
            Assert.Equal(weightOnly ? "W4A16_NVFP4" : "NVFP4", report.QuantAlgo);
            Assert.Equal(reference is not null, report.MinSqnrDb is not null);
        }
    }

    [Fact]
    public void ReportsErrorStatisticsPerModule()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("llama", tmp.Combine("source"));
        var report = QuantFormatVerifier.Verify(TestExport.Write(source, tmp.Combine("export"), QuantFormat.ModelOpt), source);

        var modules = report.Checks.Where(c => c.Scope == CheckScope.Module).ToDictionary(c => c.Name);
        var q = modules["model.layers.0.self_attn.q_proj"];
        Assert.Equal("NVFP4 [64, 64]", q.Found);
        // NVFP4 on Gaussian weights: about 10% relative RMS error, SQNR near 20 dB.
        Assert.InRange(q.RelativeRmsError!.Value, 0.05, 0.2);
        Assert.InRange(q.SqnrDb!.Value, 14, 26);
        Assert.Equal(report.Checks.Max(c => c.RelativeRmsError), report.MaxRelativeRmsError);
        Assert.Null(modules["lm_head"].SqnrDb);
    }

    /// <summary>An NVFP4 checkpoint with a calibrated FP8 KV cache: k_scale and v_scale on every attention block are verified, not just allowed.</summary>
    [Fact]
    public void Nvfp4WithKvCacheScalesPasses()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("llama", tmp.Combine("source"));
        string export = TestExport.Write(source, tmp.Combine("export"), QuantFormat.ModelOpt);
        var editor = new CheckpointEditor(export);
        editor.Json("hf_quant_config.json", root => root["quantization"]!["kv_cache_quant_algo"] = "FP8");
        editor.Json("config.json", root => root["quantization_config"]!["kv_cache_scheme"] = new JsonObject { ["dynamic"] = false, ["num_bits"] = 8, ["type"] = "float" });
        var one = new byte[] { 0, 0, 128, 63 };
        editor.Tensors(list =>
        {
            foreach (var k in list.Where(t => t.Name.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal)).ToList())
            {
                string attention = k.Name[..^".k_proj.weight".Length];
                list.Add(new StoredTensor(attention + ".k_proj.k_scale", DType.F32, [], one) { Shard = k.Shard });
                list.Add(new StoredTensor(attention + ".v_proj.v_scale", DType.F32, [], one) { Shard = k.Shard });
            }
        });

        var report = QuantFormatVerifier.Verify(export, source);

        Assert.True(report.Passed, string.Join("\n", report.Failures));
        Assert.Equal("FP8", report.KvCacheQuantAlgo);
        Assert.Equal(0, report.WarningCount);
    }

    [Fact]
    public void SourceCheckpointIsNotQuantized()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("qwen3", tmp.Combine("source"));

        var report = QuantFormatVerifier.Verify(source);

        Assert.False(report.Passed);
        Assert.Equal(QuantFormat.None, report.Format);
        var failure = Assert.Single(report.Failures);
        Assert.Equal(VerificationIds.CheckpointNotQuantized, failure.ErrorId);
        Assert.Equal(CheckScope.Checkpoint, failure.Scope);
    }

    [Fact]
    public void MissingFolderThrows()
    {
        using var tmp = new TempFolder();
        var ex = Assert.Throws<ModelOptException>(() => QuantFormatVerifier.Verify(tmp.Combine("nope")));
        Assert.Equal(ErrorIds.CheckpointFolderNotFound, ex.ErrorId);
    }

    [Fact]
    public void UnreadableReferenceThrows()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("llama", tmp.Combine("source"));
        string export = TestExport.Write(source, tmp.Combine("export"), QuantFormat.ModelOpt);
        File.Delete(Path.Combine(source, "config.json"));

        var ex = Assert.Throws<ModelOptException>(() => QuantFormatVerifier.Verify(export, source));
        Assert.Equal(ErrorIds.ConfigNotFound, ex.ErrorId);
    }

    [Fact]
    public void FolderWithoutConfigOrWeightsIsAFailedReport()
    {
        using var tmp = new TempFolder();
        var report = QuantFormatVerifier.Verify(tmp.Path);

        Assert.False(report.Passed);
        Assert.Contains(report.Failures, c => c.ErrorId == ErrorIds.ConfigNotFound);
        Assert.Contains(report.Failures, c => c.ErrorId == ErrorIds.NoWeightFiles);
    }

    [Fact]
    public void ReportsProgressAndLogOnTheCallingThread()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("qwen3_moe", tmp.Combine("source"));
        string export = TestExport.Write(source, tmp.Combine("export"), QuantFormat.ModelOpt);
        int thread = Environment.CurrentManagedThreadId;
        var seen = new List<VerificationProgress>();
        var log = new List<string>();

        var report = QuantFormatVerifier.Verify(export, source, new VerifyOptions
        {
            Progress = new Synchronous(p => { Assert.Equal(thread, Environment.CurrentManagedThreadId); seen.Add(p); }),
            Log = log.Add,
        });

        Assert.Equal(report.ModuleCount, seen.Count);
        Assert.Equal(seen.Count, seen[^1].Done);
        Assert.Contains(log, l => l.Contains("against the source", StringComparison.Ordinal));
    }

    [Fact]
    public void CancellationStops()
    {
        using var tmp = new TempFolder();
        string source = TinyCheckpoints.Write("llama", tmp.Combine("source"));
        string export = TestExport.Write(source, tmp.Combine("export"), QuantFormat.ModelOpt);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => QuantFormatVerifier.Verify(export, source, new VerifyOptions { CancellationToken = cancel.Token }));
    }

    private sealed class Synchronous(Action<VerificationProgress> report) : IProgress<VerificationProgress>
    {
        public void Report(VerificationProgress value) => report(value);
    }
}
