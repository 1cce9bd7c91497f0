using System.Diagnostics;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Calibration as ModelOpt does it: run representative text through the unquantized model, layer by layer from
/// the memory-mapped checkpoint, and record the largest |x| at the input of every Linear and of every attention block's
/// KV cache (its k_bmm_quantizer and v_bmm_quantizer), the per-block amax histograms of NVFP4 inputs (for the headroom
/// calibrator) and, when asked, the Hessian blocks of every weight unit. Returns the statistics
/// without touching the model, so a cancelled run leaves it as it was. With <see cref="CalibrationOptions.Shard"/> it
/// runs one shard of the sample set (<see cref="CalibrationShard"/>); <see cref="StatisticsMerger"/> adds shards up.
/// </summary>
public static class Calibrator
{
    public static (CalibrationStatistics Statistics, CalibrationReport Report) Run(HFModel model, CalibrationOptions options,
        IProgress<RunnerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = model.RequirePlan();
        var clock = Stopwatch.StartNew();
        var (set, dataDescription) = TokenSequences.Build(model.Path, options.DatasetPath, options.Column, options.Sequences, CorpusSplit.Train);
        var split = CalibrationSplit.Of(options, set.Count);
        if (split.ShardCount > 1) StatisticsMerger.RefuseGptq(plan, model.Path);
        var (start, length) = split.Range();
        var sequences = set.Skip(start).Take(length).ToList();

        var nvfp4Inputs = plan.Nvfp4CalibratedInputs.ToHashSet(StringComparer.Ordinal);
        using var collector = new StatisticsCollector(ExpertCounts(model), nvfp4Inputs.Contains, options.CollectHessians);
        using (var runner = ModelRunner.Create(model, new RunnerOptions
               {
                   Device = options.Device, AllExperts = options.AllExperts, Threads = options.Threads, TokensPerChunk = options.TokensPerChunk,
                   ComputeDType = options.ComputeDType,
               }))
        {
            runner.RunLayerwise(sequences, collector, progress, cancellationToken);
        }

        long tokens = sequences.Sum(s => (long)s.Length);
        var statistics = new CalibrationStatistics(collector.InputAmax, collector.Histograms, collector.HessianBlocks(), collector.TokensPerExpert, tokens,
            $"calibration on {dataDescription}" + (split.ShardCount > 1 ? $", {split.Shard}" : "")).WithActivationCalibrator(options.ActivationCalibrator, options.Headroom);
        return (statistics, CalibrationReports.Build(model, statistics, split, dataDescription, sequences.Count, clock.Elapsed));
    }

    /// <summary>Experts container name to expert count, for fused and per-expert layouts.</summary>
    private static Dictionary<string, int> ExpertCounts(HFModel model)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var m in model.Modules)
        {
            if (m.Kind == ModuleKind.FusedExperts) counts[m.Name] = (int)m.ExpertCount!.Value;
            else if (m.Expert is { } e)
            {
                string container = m.Name[..m.Name.LastIndexOf($".{e}.", StringComparison.Ordinal)];
                counts[container] = Math.Max(counts.GetValueOrDefault(container), e + 1);
            }
        }
        return counts;
    }
}
