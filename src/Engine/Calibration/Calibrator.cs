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
/// without touching the model, so a cancelled run leaves it as it was.
/// </summary>
public static class Calibrator
{
    public static (CalibrationStatistics Statistics, CalibrationReport Report) Run(HFModel model, CalibrationOptions options,
        IProgress<RunnerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = model.RequirePlan();
        var clock = Stopwatch.StartNew();
        var warnings = new List<string>();
        var (sequences, dataDescription) = TokenSequences.Build(model.Path, options.DatasetPath, options.Column, options.Sequences, CorpusSplit.Train);
        if (sequences.Count < options.Sequences.NumSamples)
            warnings.Add($"{dataDescription} gave only {sequences.Count} of the {options.Sequences.NumSamples} requested sequences of {options.Sequences.SequenceLength} tokens");

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
        var amax = collector.InputAmax;
        var coverage = collector.TokensPerExpert
            .Select(kv => new ExpertCoverage(kv.Key, model.Modules.FirstOrDefault(m => m.Name.StartsWith(kv.Key, StringComparison.Ordinal))?.Layer, kv.Value))
            .OrderBy(c => c.Layer).ThenBy(c => c.Experts, StringComparer.Ordinal)
            .ToList();
        foreach (var c in coverage.Where(c => c.Idle.Length > 0))
            warnings.Add($"{c.Experts}: {c.Idle.Length} of {c.TokensPerExpert.Length} experts saw no calibration token (they get the layer's shared input scale; use more data or -AllExperts)");
        var uncalibrated = plan.CalibratedQuantizers.Where(q => !(amax.TryGetValue(q, out float a) && a > 0)).ToList();
        var kvCache = plan.KvCache.CalibratedQuantizers.Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        var outsideExperts = uncalibrated.Where(q => !kvCache.Contains(q) && !q.Contains(".experts.", StringComparison.Ordinal)).ToList();
        if (outsideExperts.Count > 0)
            warnings.Add($"{outsideExperts.Count} quantized module input(s) got no calibration data (modules calibration does not run, e.g. under mtp. or the vision tower): " +
                         $"{List(outsideExperts)}; export will refuse them");
        // Every attention block runs, so a KV quantizer without an amax saw only zeros (e.g. a zeroed k_proj/v_proj).
        var zeroKvCache = uncalibrated.Where(kvCache.Contains).ToList();
        if (zeroKvCache.Count > 0)
            warnings.Add($"{zeroKvCache.Count} KV-cache quantizer(s) measured only zeros, so their k/v scale would be 0: {List(zeroKvCache)}; " +
                         "export will refuse them (pin their amax with constant_amax, or use the cast mode, -KvCache Fp8Cast)");

        var statistics = new CalibrationStatistics(amax, collector.Histograms, collector.HessianBlocks(), collector.TokensPerExpert, tokens,
            $"calibration on {dataDescription}").WithActivationCalibrator(options.ActivationCalibrator, options.Headroom);
        if (options.ActivationCalibrator == ActivationCalibrator.Headroom)
        {
            var noHeadroom = statistics.ActivationHistograms.Where(kv => HeadroomCalibrator.Compute(kv.Value, statistics.Headroom) is { NoHeadroom: true })
                .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            if (noHeadroom.Count > 0)
                warnings.Add($"{noHeadroom.Count} NVFP4 input(s) have a per-block amax range too wide for headroom at rho={statistics.Headroom.Rho:g}, " +
                             $"so their amax is the {statistics.Headroom.UpperPercentile:g}th percentile: {List(noHeadroom)}");
        }
        var report = new CalibrationReport
        {
            Model = model.Name, Data = dataDescription, Samples = sequences.Count, SequenceLength = options.Sequences.SequenceLength,
            Tokens = tokens, AllExperts = options.AllExperts, Duration = clock.Elapsed, QuantizersCalibrated = amax.Count,
            ExpertCoverage = coverage, Warnings = warnings, ActivationCalibrator = options.ActivationCalibrator,
            HessianUnits = statistics.HessianBlocks.Count, ComputeDType = options.ComputeDType,
        };
        return (statistics, report);
    }

    private static string List(IReadOnlyList<string> names) => string.Join(", ", names.Take(5)) + (names.Count > 5 ? ", …" : "");

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
