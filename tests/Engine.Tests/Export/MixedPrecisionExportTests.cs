using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>MIXED_PRECISION exports: deterministic, refused in compressed-tensors, and clear about the calibration they need.</summary>
public class MixedPrecisionExportTests : IDisposable
{
    private const string MixedPreset = "W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST";

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void MixedExportIsByteIdenticalAcrossRuns()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5_moe", MixedPreset, maxShardBytes: 200_000);
        var a = ExportFixture.Export(model, _tmp, maxShardBytes: 250_000);
        var b = ExportFixture.Export(model, _tmp, maxShardBytes: 250_000);
        Assert.True(a.Files.Count(f => f.EndsWith(".safetensors", StringComparison.Ordinal)) > 1);
        Assert.Equal(a.Files, b.Files);
        foreach (var f in a.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, f)), File.ReadAllBytes(Path.Combine(b.Path, f)));
    }

    [Theory]
    [InlineData("qwen3_5_moe", MixedPreset, null, "quantizes modules to FP8 and mixes formats (FP8, W4A16_NVFP4) and quantizes the KV cache")]
    [InlineData("qwen3_moe", "NVFP4_EXPERTS_ONLY_KV_FP8_CAST", null, "quantizes the KV cache")]
    [InlineData("llama", "W4A16_NVFP4", KvCacheMode.Fp8Scaled, "quantizes the KV cache")]
    public void CompressedTensorsRefusesWhatItCannotExpress(string family, string preset, KvCacheMode? kvCache, string says)
    {
        using var model = ExportFixture.Planned(_tmp, family, preset, adjust: kvCache is { } mode ? r => r.WithKvCache(mode) : null);
        string target = _tmp.Combine("ct");
        var ex = Assert.Throws<ModelOptException>(() =>
            CheckpointExporter.Export(model, target, new ExportOptions { Format = ExportFormat.CompressedTensors }));
        Assert.Equal(ExportErrorIds.CompressedTensorsFormatUnsupported, ex.ErrorId);
        Assert.Equal(ErrorKind.NotImplemented, ex.Kind);
        Assert.Contains(says, ex.Message);
        Assert.Contains("-Format ModelOpt", ex.Message);
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public void Fp8WithoutCalibrationIsRefusedNamingTheFp8InputScales()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_5", MixedPreset);
        int fp8 = model.Plan!.Modules.Count(m => m.Decision == QuantDecision.Fp8);
        model.Statistics = null;
        var ex = Assert.Throws<ModelOptException>(() => ExportFixture.Export(model, _tmp));
        Assert.Equal("CalibrationRequired", ex.ErrorId);
        Assert.Contains($"the input_scale of {fp8} FP8 input quantizer(s)", ex.Message);
        Assert.DoesNotContain("NVFP4 (W4A4)", ex.Message);
        Assert.DoesNotContain("k_scale", ex.Message); // the preset's KV cache is cast: no scales
    }
}
