using System.Diagnostics;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Combines the statistics of the shards of one sample split into the statistics of one run over the whole set:
/// max of the maxes, sums of histogram counts, of tokens per expert, of Hessian float64 sums and their token counts.
/// Max, histograms and counts come out identical by construction; Hessian sums differ from a single run's only by
/// float64 reassociation (shard sums added instead of batch sums in order), far below the float32 the search reads.
/// Every file is first checked against the model, its plan and the other files.
/// </summary>
public static class StatisticsMerger
{
    public static (CalibrationStatistics Statistics, CalibrationReport Report) Merge(HFModel model, IReadOnlyList<SavedStatistics> files)
    {
        ArgumentOutOfRangeException.ThrowIfZero(files.Count);
        var clock = Stopwatch.StartNew();
        var plan = model.RequirePlan();
        RefuseGptq(plan, model.Path);
        var shards = Checked(model, plan, files);

        var maxAmax = new Dictionary<string, float>(StringComparer.Ordinal);
        var histograms = new Dictionary<string, BlockAmaxHistogram>(StringComparer.Ordinal);
        var hessians = new Dictionary<string, HessianBlocks>(StringComparer.Ordinal);
        var tokensPerExpert = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var statistics in shards.Select(s => s.Statistics))
        {
            foreach (var (name, amax) in statistics.MaxAmax)
                maxAmax[name] = maxAmax.TryGetValue(name, out float other) ? Math.Max(amax, other) : amax;
            foreach (var (name, histogram) in statistics.ActivationHistograms)
                histograms[name] = histograms.TryGetValue(name, out var other) ? other.Plus(histogram) : histogram;
            foreach (var (name, blocks) in statistics.HessianBlocks)
                hessians[name] = hessians.TryGetValue(name, out var other) ? other.Plus(blocks) : blocks;
            foreach (var (name, counts) in statistics.TokensPerExpert)
                tokensPerExpert[name] = tokensPerExpert.TryGetValue(name, out var other) ? Sum(other, counts) : counts;
        }
        var split = shards[0].Split.AsWhole();
        var merged = new CalibrationStatistics(maxAmax, histograms, hessians, tokensPerExpert, shards.Sum(s => s.Statistics.Tokens),
                $"merge of {shards.Count} statistics file(s) of calibration on {shards[0].Data}")
            .WithActivationCalibrator(split.ActivationCalibrator, split.Headroom);
        var versions = shards.Select(s => s.ToolVersion).Distinct(StringComparer.Ordinal).ToList();
        string[] notes = versions.Count > 1
            ? [$"the statistics files were written by different ModelOptPS versions ({string.Join(", ", versions)}); their numbers may differ in rounding"]
            : [];
        var report = CalibrationReports.Build(model, merged, split, shards[0].Data, shards.Sum(s => s.Sequences),
            shards.Aggregate(clock.Elapsed, (total, s) => total + s.Duration), notes);
        return (merged, report);
    }

    /// <summary>GPTQ cannot be sharded: each layer's Hessian comes from inputs through the previous layers' GPTQ weights, solved on all samples.</summary>
    public static void RefuseGptq(QuantPlan plan, string path)
    {
        if (plan.WeightAlgorithm == WeightAlgorithm.Gptq)
            throw new ModelOptException(CalibrationErrorIds.GptqStatisticsNotMergeable, ErrorKind.InvalidOperation,
                $"The plan '{plan.RecipeName}' quantizes weights with GPTQ, which cannot be calibrated in shards or from merged statistics: GPTQ runs " +
                "layer by layer, and each layer's Hessian comes from inputs that passed through the previous layers' GPTQ-quantized weights, solved on " +
                "all samples together. Calibrate it in one Invoke-Calibration run, or choose another algorithm (LocalHessian shards exactly).", path);
    }

    /// <summary>The files, ordered by shard, after checking model, plan, split and shard coverage.</summary>
    private static List<SavedStatistics> Checked(HFModel model, QuantPlan plan, IReadOnlyList<SavedStatistics> files)
    {
        string modelFingerprint = StatisticsFingerprints.Model(model), planFingerprint = StatisticsFingerprints.Plan(plan);
        var first = files[0];
        foreach (var file in files)
        {
            string path = file.Statistics.Source;
            if (file.ModelFingerprint != modelFingerprint)
                throw new ModelOptException(CalibrationErrorIds.StatisticsModelMismatch, ErrorKind.InvalidData,
                    $"{path} was calibrated on model '{file.Model}', whose config and tensors differ from '{model.Name}' ({model.Path}).", file.Path);
            if (file.PlanFingerprint != planFingerprint)
                throw new ModelOptException(CalibrationErrorIds.StatisticsPlanMismatch, ErrorKind.InvalidData,
                    $"{path} was calibrated for plan '{file.Recipe}', which differs from the model's plan '{plan.RecipeName}'; " +
                    "pipe the model through the same Set-QuantConfig as the shards.", file.Path);
            if (file.Split.Differences(first.Split) is { Count: > 0 } differences)
                throw new ModelOptException(CalibrationErrorIds.StatisticsSplitMismatch, ErrorKind.InvalidData,
                    $"{path} and {first.Statistics.Source} are not shards of one sample split: {string.Join("; ", differences)}.", file.Path);
        }
        foreach (var group in files.GroupBy(f => f.Split.ShardIndex).Where(g => g.Count() > 1))
            throw new ModelOptException(CalibrationErrorIds.DuplicateStatisticsShard, ErrorKind.InvalidArgument,
                $"Shard {group.Key} of {first.Split.ShardCount} is given {group.Count()} times: {string.Join(", ", group.Select(f => f.Statistics.Source))}.",
                group.Last().Path);
        var missing = Enumerable.Range(0, first.Split.ShardCount).Except(files.Select(f => f.Split.ShardIndex)).ToList();
        if (missing.Count > 0)
            throw new ModelOptException(CalibrationErrorIds.MissingStatisticsShards, ErrorKind.InvalidArgument,
                $"Shard(s) {string.Join(", ", missing)} of {first.Split.ShardCount} are missing (got {files.Count} file(s)); the merge needs every shard of the split.",
                first.Path);
        foreach (var file in files)
            if (file.Sequences != file.Split.Range().Length)
                throw new ModelOptException(CalibrationErrorIds.StatisticsFileInvalid, ErrorKind.InvalidData,
                    $"{file.Statistics.Source} says it covers {file.Sequences} sequences, but {file.Split.Shard} of its split has {file.Split.Range().Length}.", file.Path);
        return files.OrderBy(f => f.Split.ShardIndex).ToList();
    }

    private static long[] Sum(long[] a, long[] b)
    {
        var sum = new long[Math.Max(a.Length, b.Length)];
        for (int e = 0; e < sum.Length; e++) sum[e] = (e < a.Length ? a[e] : 0) + (e < b.Length ? b[e] : 0);
        return sum;
    }
}
