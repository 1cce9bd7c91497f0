using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>Who wrote a valid checkpoint that a corruption test starts from.</summary>
public enum Producer
{
    /// <summary><see cref="TestExport"/>, the verifier tests' own writer.</summary>
    TestExport,

    /// <summary>The product's <see cref="CheckpointExporter"/>.</summary>
    Exporter,
}

/// <summary>Valid exports written once per test class and copied for each corruption.</summary>
public sealed class CorruptionBaselines : IDisposable
{
    private readonly TempFolder _tmp = new();
    private readonly Dictionary<(string, QuantFormat, Producer, bool), (string Source, string Export)> _written = [];
    private readonly Lock _lock = new();

    /// <summary>A fresh copy of a valid export of <paramref name="family"/>, and the source it came from.</summary>
    /// <param name="quantizeLinearAttentionBa">For <see cref="Producer.TestExport"/>: quantize in_proj_b/a too.</param>
    public (string Source, string Export) Copy(string family, QuantFormat format, Producer producer, string into,
        bool quantizeLinearAttentionBa = false)
    {
        (string source, string export) = Baseline(family, format, producer, quantizeLinearAttentionBa);
        Directory.CreateDirectory(into);
        foreach (var file in Directory.EnumerateFiles(export)) File.Copy(file, Path.Combine(into, Path.GetFileName(file)));
        return (source, into);
    }

    private (string Source, string Export) Baseline(string family, QuantFormat format, Producer producer, bool quantizeLinearAttentionBa)
    {
        var key = (family, format, producer, quantizeLinearAttentionBa);
        lock (_lock)
        {
            if (_written.TryGetValue(key, out var done)) return done;
            string name = $"{family}-{format}-{producer}" + (quantizeLinearAttentionBa ? "-ba" : "");
            string source = Path.Combine(_tmp.Path, "source-" + family);
            if (!Directory.Exists(source)) TinyCheckpoints.Write(family, source, maxShardBytes: 150_000);
            string export = Path.Combine(_tmp.Path, name);
            if (producer == Producer.TestExport)
            {
                TestExport.Write(source, export, format, quantizeLinearAttentionBa: quantizeLinearAttentionBa);
            }
            else
            {
                using var model = ModelImporter.Import(source);
                model.Plan = QuantPlanner.Plan(model, Presets.Get(Presets.Default));
                model.Statistics = SyntheticStatistics.For(model);
                CheckpointExporter.Export(model, export, new ExportOptions
                {
                    Format = format == QuantFormat.CompressedTensors ? ExportFormat.CompressedTensors : ExportFormat.ModelOpt,
                    MaxShardBytes = 150_000,
                });
            }
            return _written[key] = (source, export);
        }
    }

    public void Dispose() => _tmp.Dispose();
}
