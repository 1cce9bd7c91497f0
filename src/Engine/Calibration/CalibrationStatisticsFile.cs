using System.Globalization;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Calibration statistics as one safetensors file, exact to the bit: <c>max_amax/&lt;quantizer&gt;</c> F32 scalars
/// (the raw running max), <c>histogram/&lt;quantizer&gt;</c> I64 [512] (headroom's per-block amax histogram),
/// <c>tokens_per_expert/&lt;experts&gt;</c> I64 [E], <c>hessian_sum/&lt;unit&gt;</c> F64 [C/16, 16, 16] (Σ XᵀX) with
/// <c>hessian_tokens/&lt;unit&gt;</c> I64 scalars (N). <c>__metadata__</c> holds the format marker and version, the
/// model and plan fingerprints, the sample split as JSON, the token and sequence counts, the duration, and the tool
/// version. Written to a temporary file and renamed, so a file under the final name is always complete.
/// </summary>
public static class CalibrationStatisticsFile
{
    public const string Format = "modeloptps-calibration-statistics";
    public const int Version = 1;

    private const string MaxAmaxPrefix = "max_amax/";
    private const string HistogramPrefix = "histogram/";
    private const string TokensPerExpertPrefix = "tokens_per_expert/";
    private const string HessianSumPrefix = "hessian_sum/";
    private const string HessianTokensPrefix = "hessian_tokens/";

    public static void Save(string path, SavedStatistics saved)
    {
        var statistics = saved.Statistics;
        var tensors = new List<(TensorSpec Spec, byte[] Bytes)>();
        foreach (var (name, amax) in Sorted(statistics.MaxAmax))
            tensors.Add((new TensorSpec(MaxAmaxPrefix + name, DType.F32, []), Bytes([amax])));
        foreach (var (name, histogram) in Sorted(statistics.ActivationHistograms))
            tensors.Add((new TensorSpec(HistogramPrefix + name, DType.I64, [BlockAmaxHistogram.Bins]), Bytes(histogram.Counts.ToArray())));
        foreach (var (name, counts) in Sorted(statistics.TokensPerExpert))
            tensors.Add((new TensorSpec(TokensPerExpertPrefix + name, DType.I64, [counts.Length]), Bytes(counts)));
        foreach (var (name, hessian) in Sorted(statistics.HessianBlocks))
        {
            tensors.Add((new TensorSpec(HessianSumPrefix + name, DType.F64,
                [hessian.Columns / HessianAccumulator.BlockSize, HessianAccumulator.BlockSize, HessianAccumulator.BlockSize]), Bytes(hessian.Sums)));
            tensors.Add((new TensorSpec(HessianTokensPrefix + name, DType.I64, []), Bytes([hessian.Tokens])));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["format_version"] = Version.ToString(CultureInfo.InvariantCulture),
            ["model_fingerprint"] = saved.ModelFingerprint,
            ["plan_fingerprint"] = saved.PlanFingerprint,
            ["model"] = saved.Model,
            ["recipe"] = saved.Recipe,
            ["data"] = saved.Data,
            ["split"] = saved.Split.ToJson(),
            ["sequences"] = saved.Sequences.ToString(CultureInfo.InvariantCulture),
            ["tokens"] = statistics.Tokens.ToString(CultureInfo.InvariantCulture),
            ["duration_seconds"] = saved.Duration.TotalSeconds.ToString("R", CultureInfo.InvariantCulture),
            ["tool_version"] = saved.ToolVersion,
        };

        string full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        string temporary = $"{full}.{Guid.NewGuid():N}.partial";
        try
        {
            using (var writer = SafetensorsWriter.Create(temporary, tensors.Select(t => t.Spec).ToList(), metadata))
            {
                foreach (var (spec, bytes) in tensors) writer.WriteTensor(spec.Name, bytes);
                writer.Complete();
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public static SavedStatistics Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelOptException(CalibrationErrorIds.StatisticsFileNotFound, ErrorKind.ObjectNotFound, $"Calibration statistics file '{path}' does not exist.", path);
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (ModelOptException ex)
        {
            throw Invalid(path, $"it is not a readable safetensors file ({ex.Message})", ex);
        }
        using (file)
        {
            var meta = file.Header.Metadata;
            if (meta.GetValueOrDefault("format") != Format)
                throw Invalid(path, $"it has no '{Format}' marker in its metadata (a checkpoint shard or another tool's file?)");
            if (meta.GetValueOrDefault("format_version") != Version.ToString(CultureInfo.InvariantCulture))
                throw Invalid(path, $"it is format version {meta.GetValueOrDefault("format_version") ?? "(none)"}; this ModelOptPS reads version {Version}");
            var split = CalibrationSplit.FromJson(Text(meta, "split", path)) ?? throw Invalid(path, "its sample split (metadata 'split') is not valid JSON of a split");

            var maxAmax = new Dictionary<string, float>(StringComparer.Ordinal);
            var histograms = new Dictionary<string, long[]>(StringComparer.Ordinal);
            var tokensPerExpert = new Dictionary<string, long[]>(StringComparer.Ordinal);
            var hessianSums = new Dictionary<string, (double[] Sums, int Columns)>(StringComparer.Ordinal);
            var hessianTokens = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var tensor in file.Tensors.Values)
            {
                string name = tensor.Name;
                if (name.StartsWith(MaxAmaxPrefix, StringComparison.Ordinal))
                    maxAmax[name[MaxAmaxPrefix.Length..]] = Values<float>(file, tensor, DType.F32, [])[0];
                else if (name.StartsWith(HistogramPrefix, StringComparison.Ordinal))
                    histograms[name[HistogramPrefix.Length..]] = Values<long>(file, tensor, DType.I64, [BlockAmaxHistogram.Bins]);
                else if (name.StartsWith(TokensPerExpertPrefix, StringComparison.Ordinal))
                    tokensPerExpert[name[TokensPerExpertPrefix.Length..]] = Values<long>(file, tensor, DType.I64, [tensor.Shape.FirstOrDefault()]);
                else if (name.StartsWith(HessianSumPrefix, StringComparison.Ordinal))
                    hessianSums[name[HessianSumPrefix.Length..]] = (
                        Values<double>(file, tensor, DType.F64, [tensor.Shape.FirstOrDefault(), HessianAccumulator.BlockSize, HessianAccumulator.BlockSize]),
                        (int)tensor.Shape[0] * HessianAccumulator.BlockSize);
                else if (name.StartsWith(HessianTokensPrefix, StringComparison.Ordinal))
                    hessianTokens[name[HessianTokensPrefix.Length..]] = Values<long>(file, tensor, DType.I64, [])[0];
                else
                    throw Invalid(path, $"it holds a tensor '{name}' that is no calibration statistic");
            }
            if (histograms.Keys.FirstOrDefault(q => !maxAmax.ContainsKey(q) && histograms[q].Any(c => c != 0)) is { } orphan)
                throw Invalid(path, $"the histogram of '{orphan}' has counts but no max_amax");
            if (hessianSums.Keys.Except(hessianTokens.Keys).Concat(hessianTokens.Keys.Except(hessianSums.Keys)).FirstOrDefault() is { } unpaired)
                throw Invalid(path, $"the Hessian of '{unpaired}' lacks its sum or its token count");

            var statistics = new CalibrationStatistics(maxAmax,
                histograms.ToDictionary(kv => kv.Key, kv => new BlockAmaxHistogram(kv.Key, kv.Value, maxAmax.TryGetValue(kv.Key, out float m) ? m : null), StringComparer.Ordinal),
                hessianSums.ToDictionary(kv => kv.Key, kv => new HessianBlocks(kv.Value.Sums, hessianTokens[kv.Key], kv.Value.Columns), StringComparer.Ordinal),
                tokensPerExpert, Number(meta, "tokens", path), $"statistics file '{path}'");
            return new SavedStatistics
            {
                Statistics = statistics.WithActivationCalibrator(split.ActivationCalibrator, split.Headroom),
                Split = split,
                ModelFingerprint = Text(meta, "model_fingerprint", path),
                PlanFingerprint = Text(meta, "plan_fingerprint", path),
                Model = Text(meta, "model", path),
                Recipe = Text(meta, "recipe", path),
                Data = Text(meta, "data", path),
                Sequences = (int)Number(meta, "sequences", path),
                Duration = TimeSpan.FromSeconds(double.TryParse(Text(meta, "duration_seconds", path), NumberStyles.Float, CultureInfo.InvariantCulture, out double s) ? s : 0),
                ToolVersion = Text(meta, "tool_version", path),
                Path = path,
            };
        }
    }

    private static IEnumerable<KeyValuePair<string, T>> Sorted<T>(IReadOnlyDictionary<string, T> items) => items.OrderBy(kv => kv.Key, StringComparer.Ordinal);

    private static byte[] Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>A tensor's values, after checking that its dtype and shape are the ones its name promises.</summary>
    private static T[] Values<T>(SafetensorsFile file, TensorInfo tensor, DType dtype, long[] shape) where T : unmanaged
    {
        if (tensor.DType != dtype || !tensor.Shape.SequenceEqual(shape) || tensor.ByteLength > int.MaxValue)
            throw Invalid(file.Path, $"tensor '{tensor.Name}' is {tensor.DType} {tensor.ShapeText}; a statistic of its kind is {dtype} {TensorInfo.FormatShape(shape)}");
        return MemoryMarshal.Cast<byte, T>(file.ToArray(tensor)).ToArray();
    }

    private static string Text(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        meta.TryGetValue(key, out var value) ? value : throw Invalid(path, $"its metadata lacks '{key}'");

    private static long Number(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        long.TryParse(Text(meta, key, path), NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n >= 0
            ? n : throw Invalid(path, $"its metadata '{key}' is not a count");

    private static ModelOptException Invalid(string path, string why, Exception? inner = null) =>
        new(CalibrationErrorIds.StatisticsFileInvalid, ErrorKind.InvalidData, $"'{path}' is not a calibration statistics file this module can read: {why}.", path, inner);
}
