using System.Globalization;
using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// A recipe's <c>algorithm</c> (ModelOpt's <c>QuantizeAlgorithmConfig</c>) as far as it changes the export: the weight
/// algorithm and GPTQ's settings. Settings that only steer how ModelOpt runs (<c>layerwise</c>, <c>distributed_sync</c>,
/// <c>fused</c>, <c>debug</c>) change no number and are ignored.
/// </summary>
public sealed record QuantAlgorithm(WeightAlgorithm Weights)
{
    /// <summary>GPTQ's damping, a fraction of the mean Hessian diagonal (ModelOpt's <c>perc_damp</c>, default 0.01).</summary>
    public double PercDamp { get; init; } = 0.01;

    /// <summary>GPTQ's column block (ModelOpt's <c>block_size</c>, default 128), a multiple of the NVFP4 block.</summary>
    public int GptqBlockSize { get; init; } = 128;

    public static QuantAlgorithm Max { get; } = new(WeightAlgorithm.Max);

    public override string ToString() => Weights == WeightAlgorithm.Gptq
        ? string.Create(CultureInfo.InvariantCulture, $"Gptq (perc_damp {PercDamp}, block_size {GptqBlockSize})")
        : Weights.ToString();

    /// <summary>
    /// Reads ModelOpt's spellings: a method name (<c>max</c>, <c>mse</c>, <c>local_hessian</c>, <c>gptq</c>) or a mapping
    /// with <c>method</c> and its options (<c>fp8_scale_sweep</c>, <c>perc_damp</c>, <c>block_size</c>, the <c>mse</c>
    /// multipliers). Returns null with the reason for anything whose scales ModelOptPS would not reproduce.
    /// </summary>
    public static QuantAlgorithm? Parse(JsonNode? node, out string name, out string? problem)
    {
        problem = null;
        var options = node as JsonObject ?? [];
        name = node switch
        {
            null => "max",
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonObject o when o["method"] is JsonValue m && m.TryGetValue(out string? method) => method,
            JsonObject o when !o.ContainsKey("method") => "max",
            _ => node.ToJsonString(),
        };
        switch (name.ToLowerInvariant())
        {
            case "max":
                return Max;
            case "mse":
                bool sweep = Flag(options, "fp8_scale_sweep", false);
                if (!sweep && !DefaultMultipliers(options, out problem)) return null;
                return new QuantAlgorithm(sweep ? WeightAlgorithm.MseFp8Sweep : WeightAlgorithm.Mse);
            case "local_hessian":
                if (!Flag(options, "fp8_scale_sweep", true))
                {
                    problem = "local_hessian without fp8_scale_sweep (the multiplier search) is not implemented; ModelOpt's default, fp8_scale_sweep: true, is";
                    return null;
                }
                if (Number(options, "block_size") is { } hb && hb != 16)
                {
                    problem = $"local_hessian block_size {hb.ToString(CultureInfo.InvariantCulture)} differs from the NVFP4 block of 16";
                    return null;
                }
                return new QuantAlgorithm(WeightAlgorithm.LocalHessian);
            case "gptq":
                double damp = Number(options, "perc_damp") ?? 0.01;
                double block = Number(options, "block_size") ?? 128;
                if (!(damp > 0 && damp <= 1))
                {
                    problem = $"perc_damp {damp.ToString(CultureInfo.InvariantCulture)} is not in (0, 1]";
                    return null;
                }
                if (block <= 0 || block % 16 != 0 || block > int.MaxValue)
                {
                    problem = $"block_size {block.ToString(CultureInfo.InvariantCulture)} is not a positive multiple of the NVFP4 block (16)";
                    return null;
                }
                return new QuantAlgorithm(WeightAlgorithm.Gptq) { PercDamp = damp, GptqBlockSize = (int)block };
            default:
                problem = "ModelOptPS implements max, mse (with or without fp8_scale_sweep), local_hessian and gptq";
                return null;
        }
    }

    /// <summary>ModelOpt's plain <c>mse</c> searches amax·linspace(0.25, 4.0, step 0.1); other multipliers are other scales.</summary>
    private static bool DefaultMultipliers(JsonObject options, out string? problem)
    {
        problem = null;
        foreach (var (key, expected) in new[] { ("step_size", 0.1), ("start_multiplier", 0.25), ("stop_multiplier", 4.0) })
        {
            if (Number(options, key) is { } value && value != expected)
            {
                problem = $"mse {key} {value.ToString(CultureInfo.InvariantCulture)} differs from ModelOpt's default {expected.ToString(CultureInfo.InvariantCulture)}, the only multipliers implemented";
                return false;
            }
        }
        return true;
    }

    private static bool Flag(JsonObject options, string key, bool fallback) =>
        options[key] is JsonValue v && v.TryGetValue(out bool flag) ? flag : fallback;

    private static double? Number(JsonObject options, string key) => options[key] is JsonValue v
        ? v.TryGetValue(out double d) ? d : v.TryGetValue(out long l) ? l : v.TryGetValue(out string? s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) ? p : null
        : null;
}
