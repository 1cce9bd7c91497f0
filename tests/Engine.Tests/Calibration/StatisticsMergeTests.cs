using System.Buffers.Binary;
using System.Text;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>
/// Sharded calibration: shards on batch boundaries, saved to statistics files and merged, give exactly the statistics of
/// one run; the file keeps every number to the bit; the merge refuses files that do not belong together.
/// </summary>
public sealed class StatisticsMergeTests : IDisposable
{
    // 6 sequences in batches of 2: three batches, so two shards get one and two batches.
    private static readonly CalibrationOptions Options = new()
    {
        Sequences = new SequenceOptions { NumSamples = 6, SequenceLength = 32, Seed = 5 }, TokensPerChunk = 64, CollectHessians = true,
        ActivationCalibrator = ActivationCalibrator.Headroom,
    };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Planned(string family, WeightAlgorithm algorithm = WeightAlgorithm.LocalHessian)
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT").WithKvCache(KvCacheMode.Fp8Scaled).WithAlgorithm(new QuantAlgorithm(algorithm)));
        return model;
    }

    /// <summary>Shard <paramref name="index"/> of <paramref name="count"/>, calibrated, saved and read back.</summary>
    private SavedStatistics Shard(HFModel model, int index, int count, CalibrationOptions? options = null)
    {
        var (statistics, report) = Calibrator.Run(model, (options ?? Options) with { Shard = new CalibrationShard(index, count) });
        string path = _tmp.Combine($"{model.Name}-{index}-of-{count}-{Guid.NewGuid():N}.safetensors");
        CalibrationStatisticsFile.Save(path, SavedStatistics.Of(model, statistics, report));
        return CalibrationStatisticsFile.Load(path);
    }

    [Theory]
    [InlineData("qwen3_5_moe", 2)]
    [InlineData("qwen3_5_moe", 3)]
    [InlineData("qwen3_moe", 2)]
    public void ShardsMergeIntoTheStatisticsOfOneRun(string family, int shards)
    {
        using var model = Planned(family);
        var (single, singleReport) = Calibrator.Run(model, Options);
        var files = Enumerable.Range(0, shards).Select(i => Shard(model, i, shards)).Reverse().ToList();
        Assert.Equal(6, files.Sum(f => f.Sequences));

        var (merged, report) = StatisticsMerger.Merge(model, files);
        AssertSame(single, merged);
        Assert.Equal(singleReport.Tokens, report.Tokens);
        Assert.Equal(6, report.Samples);
        Assert.Equal(singleReport.Warnings, report.Warnings);
        Assert.Equal(singleReport.ExpertCoverage.Select(c => c.TokensPerExpert), report.ExpertCoverage.Select(c => c.TokensPerExpert));
        Assert.Equal(Options.ActivationCalibrator, report.ActivationCalibrator);
        Assert.Equal(1, report.Split!.ShardCount);
    }

    [Fact]
    public void TheFileKeepsEveryNumberToTheBit()
    {
        using var model = Planned("qwen3_5_moe");
        var (statistics, report) = Calibrator.Run(model, Options);
        string path = _tmp.Combine("stats", "whole.safetensors");
        var saved = SavedStatistics.Of(model, statistics, report);
        CalibrationStatisticsFile.Save(path, saved);
        var read = CalibrationStatisticsFile.Load(path);

        AssertSame(statistics, read.Statistics);
        Assert.Equal(saved.Split, read.Split);
        Assert.Equal(StatisticsFingerprints.Model(model), read.ModelFingerprint);
        Assert.Equal(StatisticsFingerprints.Plan(model.Plan!), read.PlanFingerprint);
        Assert.Equal((model.Name, "NVFP4_DEFAULT", report.Samples, path), (read.Model, read.Recipe, read.Sequences, read.Path));
        Assert.Equal(SavedStatistics.CurrentToolVersion, read.ToolVersion);
        Assert.Equal(new[] { "whole.safetensors" }, Directory.GetFiles(_tmp.Combine("stats")).Select(Path.GetFileName));

        // Saving again replaces the file whole.
        CalibrationStatisticsFile.Save(path, saved);
        AssertSame(statistics, CalibrationStatisticsFile.Load(path).Statistics);
    }

    [Theory]
    [InlineData(12, 4, 3)]
    [InlineData(10, 3, 4)]
    [InlineData(7, 2, 2)]
    [InlineData(5, 1, 5)]
    [InlineData(9, 4, 1)]
    public void ShardsPartitionTheSetIntoWholeBatches(int sequences, int perBatch, int count)
    {
        int next = 0;
        for (int i = 0; i < count; i++)
        {
            var (start, length) = new CalibrationShard(i, count).Range(sequences, perBatch);
            Assert.Equal(next, start);
            Assert.Equal(0, start % perBatch);
            Assert.True(length > 0);
            next = start + length;
        }
        Assert.Equal(sequences, next);
    }

    [Fact]
    public void ShardsNeedOneBatchEachAndAnIndexBelowTheCount()
    {
        Assert.Equal(CalibrationErrorIds.TooFewBatchesForShards,
            Assert.Throws<ModelOptException>(() => new CalibrationShard(0, 4).Range(6, 2)).ErrorId);
        Assert.Equal(CalibrationErrorIds.InvalidShard, Assert.Throws<ModelOptException>(() => new CalibrationShard(2, 2).Validated()).ErrorId);
        Assert.Equal(CalibrationErrorIds.InvalidShard, Assert.Throws<ModelOptException>(() => new CalibrationShard(-1, 2).Validated()).ErrorId);
        Assert.Equal(CalibrationErrorIds.InvalidShard, Assert.Throws<ModelOptException>(() =>
            CalibrationSplit.Of(Options with { TokensPerChunk = 48, Shard = new CalibrationShard(0, 2) }, 6)).ErrorId);
    }

    [Fact]
    public void TheMergeRefusesFilesThatDoNotBelongTogether()
    {
        using var model = Planned("qwen3_moe");
        var shards = new[] { Shard(model, 0, 2), Shard(model, 1, 2) };

        Assert.Equal(CalibrationErrorIds.DuplicateStatisticsShard, Refused(model, [shards[0], shards[1], shards[0]]));
        var missing = Assert.Throws<ModelOptException>(() => StatisticsMerger.Merge(model, [shards[1]]));
        Assert.Equal(CalibrationErrorIds.MissingStatisticsShards, missing.ErrorId);
        Assert.Contains("Shard(s) 0 of 2", missing.Message);
        Assert.Equal(shards[1].Path, missing.Path);

        var otherSeed = shards[1] with { Split = shards[1].Split with { Seed = 6 } };
        var split = Assert.Throws<ModelOptException>(() => StatisticsMerger.Merge(model, [shards[0], otherSeed]));
        Assert.Equal(CalibrationErrorIds.StatisticsSplitMismatch, split.ErrorId);
        Assert.Contains("Seed: 6 vs 5", split.Message);
        Assert.Equal(CalibrationErrorIds.StatisticsSplitMismatch,
            Refused(model, [shards[0], shards[1] with { Split = shards[1].Split with { TokensPerChunk = 32 } }]));
        Assert.Equal(CalibrationErrorIds.StatisticsFileInvalid, Refused(model, [shards[0], shards[1] with { Sequences = 5 }]));

        Assert.Equal(CalibrationErrorIds.StatisticsModelMismatch, Refused(model, [shards[0], shards[1] with { ModelFingerprint = "sha256:00" }]));
        using var other = Planned("qwen3_moe", WeightAlgorithm.MseFp8Sweep);
        Assert.Equal(CalibrationErrorIds.StatisticsPlanMismatch, Refused(other, shards));
        using var gptq = Planned("qwen3_moe", WeightAlgorithm.Gptq);
        Assert.Equal(CalibrationErrorIds.GptqStatisticsNotMergeable, Refused(gptq, shards));
        Assert.Equal(CalibrationErrorIds.GptqStatisticsNotMergeable,
            Assert.Throws<ModelOptException>(() => Calibrator.Run(gptq, Options with { Shard = new CalibrationShard(0, 2) })).ErrorId);
    }

    [Fact]
    public void AFileThatIsNotOursOrIsDamagedIsInvalidWithItsPath()
    {
        using var model = Planned("qwen3_moe");
        var shard = Shard(model, 0, 2);
        Assert.Equal(CalibrationErrorIds.StatisticsFileNotFound, Unreadable(_tmp.Combine("none.safetensors")).ErrorId);

        var checkpointShard = Unreadable(model.Checkpoint.Shards[0].Path);
        Assert.Equal(CalibrationErrorIds.StatisticsFileInvalid, checkpointShard.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, checkpointShard.Kind);
        Assert.Contains("marker", checkpointShard.Message);

        byte[] bytes = File.ReadAllBytes(shard.Path!);
        string truncated = _tmp.Combine("truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..^8]);
        var cut = Unreadable(truncated);
        Assert.Equal((CalibrationErrorIds.StatisticsFileInvalid, truncated), (cut.ErrorId, cut.Path));

        // A later format version: the same file with its version field changed (same length, so the header stays valid).
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, headerLength).Replace("\"format_version\":\"1\"", "\"format_version\":\"7\"", StringComparison.Ordinal);
        Encoding.UTF8.GetBytes(header).CopyTo(bytes, 8);
        string later = _tmp.Combine("later.safetensors");
        File.WriteAllBytes(later, bytes);
        Assert.Contains("format version 7", Unreadable(later).Message);

        // A tensor whose name is no statistic.
        string foreign = _tmp.Combine("foreign.safetensors");
        using (var writer = SafetensorsWriter.Create(foreign, [new TensorSpec("model.embed_tokens.weight", DType.F32, [1])],
                   new Dictionary<string, string>(ReadMetadata(shard.Path!))))
        {
            writer.WriteTensor("model.embed_tokens.weight", new byte[4]);
            writer.Complete();
        }
        Assert.Contains("no calibration statistic", Unreadable(foreign).Message);
    }

    private static IReadOnlyDictionary<string, string> ReadMetadata(string path) => SafetensorsHeader.Read(path).Metadata;

    private static ModelOptException Unreadable(string path) => Assert.Throws<ModelOptException>(() => CalibrationStatisticsFile.Load(path));

    private static string Refused(HFModel model, IReadOnlyList<SavedStatistics> files) =>
        Assert.Throws<ModelOptException>(() => StatisticsMerger.Merge(model, files)).ErrorId;

    /// <summary>Every statistic equal: float32 by bits, Hessian float64 sums up to reassociation, their float32 blocks exactly.</summary>
    private static void AssertSame(CalibrationStatistics expected, CalibrationStatistics actual)
    {
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.ActivationCalibrator, actual.ActivationCalibrator);
        Assert.Equal(Bits(expected.MaxAmax), Bits(actual.MaxAmax));
        Assert.Equal(Bits(expected.InputAmax), Bits(actual.InputAmax));
        Assert.Equal(expected.ActivationHistograms.Keys.Order(), actual.ActivationHistograms.Keys.Order());
        foreach (var (name, histogram) in expected.ActivationHistograms)
        {
            Assert.Equal(histogram.Counts, actual.ActivationHistograms[name].Counts);
            Assert.Equal(histogram.Max, actual.ActivationHistograms[name].Max);
        }
        Assert.Equal(expected.TokensPerExpert.OrderBy(kv => kv.Key), actual.TokensPerExpert.OrderBy(kv => kv.Key));
        Assert.NotEmpty(expected.HessianBlocks);
        Assert.Equal(expected.HessianBlocks.Keys.Order(), actual.HessianBlocks.Keys.Order());
        foreach (var (unit, blocks) in expected.HessianBlocks)
        {
            var other = actual.HessianBlocks[unit];
            Assert.Equal((blocks.Tokens, blocks.Columns), (other.Tokens, other.Columns));
            Assert.Equal(blocks.Blocks, other.Blocks);
            for (int i = 0; i < blocks.Sums.Length; i++)
                Assert.True(Math.Abs(blocks.Sums[i] - other.Sums[i]) <= 1e-12 * Math.Abs(blocks.Sums[i]), $"{unit}[{i}]: {blocks.Sums[i]:R} vs {other.Sums[i]:R}");
        }
    }

    private static IEnumerable<(string, int)> Bits(IReadOnlyDictionary<string, float> amax) =>
        amax.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, BitConverter.SingleToInt32Bits(kv.Value)));
}
