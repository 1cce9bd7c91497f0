using System.Diagnostics;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>Progress of a quality measurement: sequences done of all.</summary>
public readonly record struct QualityProgress(int SequencesDone, int Sequences);

/// <summary>
/// Compares a model with its quantized form on held-out text: perplexity of each, mean KL divergence of the next-token
/// distributions, top-1 agreement. The quantized form runs as an engine computes it: dequantized NVFP4 and FP8 weights,
/// NVFP4 W4A4 activations quantized per 16-element block against the calibrated input scale, FP8 activations per
/// tensor against theirs, and an FP8 KV cache (keys and values quantized as cached, with their scales or 1.0).
/// </summary>
public static class QualityMeasurer
{
    /// <summary>Measures the form a plan (and its calibration statistics) defines, before export.</summary>
    public static QualityReport MeasurePlanned(HFModel model, QualityOptions options, IProgress<QualityProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        return Measure(model, new PlannedQuantization(model, model.RequirePlan(), cancellationToken), options, progress, cancellationToken);
    }

    /// <summary>Measures an exported checkpoint, read back from disk, against the source it was exported from.</summary>
    public static QualityReport MeasureExport(HFModel source, string exportFolder, QualityOptions options,
        IProgress<QualityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var export = CheckpointReader.Open(exportFolder);
        if (!ExportedQuantization.QuantizedWeights(export).Any())
            throw new ModelOptException("NotAnNvfp4Checkpoint", ErrorKind.InvalidData,
                $"'{export.Folder}' holds no NVFP4 or FP8 weights; give the folder Export-Nvfp4 wrote.", export.Folder);
        return Measure(source, new ExportedQuantization(export), options, progress, cancellationToken);
    }

    private static QualityReport Measure(HFModel model, IQuantizedForm form, QualityOptions options,
        IProgress<QualityProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var (sequences, data) = TokenSequences.Build(model.Path, options.DatasetPath, options.Column, options.Sequences, CorpusSplit.HeldOut);
        long vocab = model.VocabSize ?? model.Checkpoint.GetTensor(model.Modules.First(m => m.Kind == ModuleKind.Embedding).Primary.Name).Info.Shape[0];
        int group = (int)Math.Clamp(options.LogitsBudgetBytes / (2L * options.Sequences.SequenceLength * vocab * sizeof(float)), 1, sequences.Count);

        using var reference = ModelRunner.Create(model, new RunnerOptions { Device = options.Device });
        using var quantized = ModelRunner.Create(model, new RunnerOptions
        {
            Device = options.Device,
            WeightTransform = form.Weight,
            ActivationTransform = (name, x) => form.Activation(name)?.FakeQuantize(x) ?? x,
        });
        var metrics = new NextTokenMetrics();
        for (int start = 0; start < sequences.Count; start += group)
        {
            var batch = sequences.Skip(start).Take(group).ToList();
            var referenceLogits = new Tensor[batch.Count];
            try
            {
                reference.RunLayerwise(batch, null, null, cancellationToken, (i, logits) => referenceLogits[i] = logits.clone().DetachFromDisposeScope());
                quantized.RunLayerwise(batch, null, null, cancellationToken, (i, logits) => metrics.Add(batch[i], referenceLogits[i], logits));
            }
            finally
            {
                foreach (var t in referenceLogits) t?.Dispose();
            }
            progress?.Report(new QualityProgress(start + batch.Count, sequences.Count));
        }
        return new QualityReport
        {
            Model = model.Name, Quantized = form.Description, Scheme = form.Scheme, Data = data, Sequences = sequences.Count,
            Positions = metrics.Positions, ReferencePerplexity = metrics.ReferencePerplexity, QuantizedPerplexity = metrics.QuantizedPerplexity,
            MeanKl = metrics.MeanKl, Top1Agreement = metrics.Top1Agreement, Duration = clock.Elapsed,
        };
    }
}
