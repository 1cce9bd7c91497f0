using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Which samples a calibration ran on and how, as far as it decides the statistics: the data (its file name and
/// SHA-256, or the built-in corpus), the sequences built from it, the batch the runner chunks by, the switches that
/// change what is collected, and which shard of the set. Shards whose splits differ only in <see cref="ShardIndex"/>
/// are parts of one run; everything else must match for their statistics to merge.
/// </summary>
public sealed record CalibrationSplit
{
    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>The data file's name, or <c>built-in corpus</c>.</summary>
    public required string Dataset { get; init; }

    /// <summary>SHA-256 of the data file (hex); null for the built-in corpus.</summary>
    public string? DatasetSha256 { get; init; }

    public string? Column { get; init; }

    public required int NumSamples { get; init; }

    public required int SequenceLength { get; init; }

    public required int Seed { get; init; }

    /// <summary>Sequences the data gave (at most <see cref="NumSamples"/>), in the whole set.</summary>
    public required int Sequences { get; init; }

    /// <summary>Tokens per feed-forward chunk: the batch, in tokens.</summary>
    public required int TokensPerChunk { get; init; }

    public required bool AllExperts { get; init; }

    public required bool CollectHessians { get; init; }

    /// <summary>The dtype the model ran in: bf16 and fp32 runs measure different amaxes, so they never merge.</summary>
    public required ComputeDType ComputeDType { get; init; }

    public required ActivationCalibrator ActivationCalibrator { get; init; }

    public required HeadroomSettings Headroom { get; init; }

    public int ShardCount { get; init; } = 1;

    public int ShardIndex { get; init; }

    [JsonIgnore]
    public CalibrationShard Shard => new(ShardIndex, ShardCount);

    /// <summary>Sequences per batch, which shards split on.</summary>
    [JsonIgnore]
    public int SequencesPerBatch => Math.Max(1, TokensPerChunk / SequenceLength);

    /// <summary>The split of a run with <paramref name="options"/> over a set of <paramref name="sequences"/> sequences.</summary>
    public static CalibrationSplit Of(CalibrationOptions options, int sequences)
    {
        var shard = (options.Shard ?? CalibrationShard.Whole).Validated();
        if (shard.Count > 1 && options.TokensPerChunk % options.Sequences.SequenceLength != 0)
            throw new ModelOptException(CalibrationErrorIds.InvalidShard, ErrorKind.InvalidArgument,
                $"Shards split on whole batches, but a batch of {options.TokensPerChunk} tokens is not a whole number of {options.Sequences.SequenceLength}-token sequences.");
        return new CalibrationSplit
        {
            Dataset = options.DatasetPath is { } path ? System.IO.Path.GetFileName(path) : "built-in corpus",
            DatasetSha256 = options.DatasetPath is { } file ? Sha256(file) : null,
            Column = options.Column,
            NumSamples = options.Sequences.NumSamples,
            SequenceLength = options.Sequences.SequenceLength,
            Seed = options.Sequences.Seed,
            Sequences = sequences,
            TokensPerChunk = options.TokensPerChunk,
            AllExperts = options.AllExperts,
            CollectHessians = options.CollectHessians,
            ComputeDType = options.ComputeDType,
            ActivationCalibrator = options.ActivationCalibrator,
            Headroom = options.Headroom,
            ShardCount = shard.Count,
            ShardIndex = shard.Index,
        };
    }

    /// <summary>This shard's first sequence and sequence count in the set.</summary>
    public (int Start, int Length) Range() => Shard.Range(Sequences, SequencesPerBatch);

    /// <summary>The same split as one run over the whole set.</summary>
    public CalibrationSplit AsWhole() => this with { ShardCount = 1, ShardIndex = 0 };

    /// <summary>The fields, other than the shard index, whose values differ from <paramref name="other"/>'s, as "name: a vs b".</summary>
    public IReadOnlyList<string> Differences(CalibrationSplit other)
    {
        var mine = ToJsonObject();
        var theirs = other.ToJsonObject();
        return mine.Select(kv => kv.Key).Union(theirs.Select(kv => kv.Key)).Where(key => key != nameof(ShardIndex))
            .Where(key => !JsonNode.DeepEquals(mine[key], theirs[key]))
            .Select(key => $"{key}: {mine[key]?.ToJsonString() ?? "null"} vs {theirs[key]?.ToJsonString() ?? "null"}")
            .ToList();
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses <see cref="ToJson"/>'s output; null when the text is not a split.</summary>
    public static CalibrationSplit? FromJson(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<CalibrationSplit>(json, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private JsonObject ToJsonObject() => JsonNode.Parse(ToJson())!.AsObject();

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    public override string ToString() =>
        $"{Dataset}, {Sequences} x {SequenceLength} tokens (seed {Seed}), batches of {SequencesPerBatch}, {Shard}";
}
