using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// A quantizer's <c>cfg</c> as ModelOpt writes it (<c>num_bits</c>, <c>block_sizes</c>, <c>axis</c>, the constant-amax
/// options), reduced to what decides the exported format. ModelOptPS exports NVFP4 (E2M1 values, 16-element blocks on
/// the last axis, E4M3 scales) and FP8 per-tensor (E4M3 values, one fp32 scale per tensor). Anything else is
/// recognised, described, and refused where it would be applied — never silently treated as one of those.
/// </summary>
public sealed record QuantizerFormat(string NumBits, int? BlockSize, string? ScaleBits, string? BlockType)
{
    /// <summary>ModelOpt's <c>configs/numerics/nvfp4</c>.</summary>
    public static QuantizerFormat Nvfp4 { get; } = new("e2m1", 16, "e4m3", "dynamic");

    /// <summary>ModelOpt's <c>configs/numerics/fp8</c>: E4M3, per tensor (<c>axis: null</c>).</summary>
    public static QuantizerFormat Fp8 { get; } = new("e4m3", null, null, null);

    /// <summary>ModelOpt's <c>kv_fp8_cast</c> unit: FP8 with <c>use_constant_amax</c>, amax pinned to 448.</summary>
    public static QuantizerFormat Fp8Cast { get; } = Fp8 with { UseConstantAmax = true };

    /// <summary>The <c>axis</c> of a per-channel quantizer; null (per tensor) for the formats ModelOptPS exports.</summary>
    public int? Axis { get; init; }

    /// <summary><c>use_constant_amax</c>: amax pinned to the format's maximum (448 for E4M3), never calibrated.</summary>
    public bool UseConstantAmax { get; init; }

    /// <summary><c>constant_amax</c>: amax pinned to this value for calibration and export.</summary>
    public float? ConstantAmax { get; init; }

    /// <summary>Block sizes on axes other than the last (<c>-2: 128</c> of 2-D blockwise FP8), as written; null when none.</summary>
    public string? OtherBlockAxes { get; init; }

    public bool IsNvfp4 => NumBits == "e2m1" && BlockSize == 16 && ScaleBits == "e4m3" && OtherBlockAxes is null;

    /// <summary>FP8 E4M3 with one scale per tensor: no blocks, no axis (ModelOpt's <c>QUANTIZATION_FP8</c>).</summary>
    public bool IsFp8PerTensor => NumBits == "e4m3" && BlockSize is null && OtherBlockAxes is null && Axis is null;

    /// <summary>The amax the quantizer is pinned to, or null when calibration measures it.</summary>
    public float? PinnedAmax => ConstantAmax ?? (UseConstantAmax && NumBits == "e4m3" ? ModelOptPS.Engine.Numerics.E4M3.MaxValue : null);

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["num_bits"] = NumBits };
        if (BlockSize is not null || ScaleBits is not null || BlockType is not null)
            o["block_sizes"] = new JsonObject { ["-1"] = BlockSize, ["type"] = BlockType, ["scale_bits"] = ScaleBits };
        else
            o["axis"] = Axis;
        if (UseConstantAmax) o["use_constant_amax"] = true;
        if (ConstantAmax is { } c) o["constant_amax"] = c;
        return o;
    }

    public override string ToString() => (IsNvfp4
        ? $"NVFP4 (e2m1, block 16, e4m3 scales, {BlockType ?? "dynamic"})"
        : IsFp8PerTensor
            ? "FP8 (e4m3, per tensor)"
            : $"num_bits {NumBits}" + (BlockSize is { } b ? $", block {b}" : "") + (OtherBlockAxes is { } o ? $", blocks {o}" : "") + (ScaleBits is { } s ? $", {s} scales" : "") + (Axis is { } a ? $", axis {a}" : ""))
        + (PinnedAmax is { } p ? $", amax pinned to {p.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : "");

    /// <summary>Reads a cfg object; returns null with a reason when it does not describe a quantizer format.</summary>
    public static QuantizerFormat? Parse(JsonObject cfg, out string? problem)
    {
        problem = null;
        string? numBits = Bits(cfg["num_bits"]);
        if (numBits is null)
        {
            problem = "cfg has no num_bits";
            return null;
        }
        int? blockSize = null;
        string? scaleBits = null, blockType = null, otherBlockAxes = null;
        int? axis = null;
        if (cfg["axis"] is { } axisNode)
        {
            if (Integer(axisNode) is not { } a || a is < int.MinValue or > int.MaxValue)
            {
                problem = $"axis {axisNode.ToJsonString()} is not an integer or null";
                return null;
            }
            axis = (int)a;
        }
        bool useConstantAmax = cfg["use_constant_amax"] is JsonValue u && u.TryGetValue(out bool flag) && flag;
        float? constantAmax = null;
        if (cfg["constant_amax"] is { } constantNode)
        {
            if (Number(constantNode) is not { } c || !(c > 0) || !double.IsFinite(c))
            {
                problem = $"constant_amax {constantNode.ToJsonString()} is not a positive number";
                return null;
            }
            constantAmax = (float)c;
        }
        if (cfg["block_sizes"] is JsonObject blocks)
        {
            foreach (var (key, value) in blocks)
            {
                switch (key)
                {
                    case "type":
                        blockType = value?.GetValue<string>();
                        break;
                    case "scale_bits":
                        scaleBits = Bits(value);
                        break;
                    case "-1":
                        blockSize = Integer(value) is { } n and > 0 and <= int.MaxValue ? (int)n : null;
                        break;
                    default:
                        // Another axis makes it a 2-D block format, which neither NVFP4 nor FP8 per tensor is.
                        if (int.TryParse(key, out _)) otherBlockAxes = (otherBlockAxes is null ? "" : otherBlockAxes + ", ") + $"{key}: {value?.ToJsonString()}";
                        break;
                }
            }
        }
        if (useConstantAmax && constantAmax is not null)
        {
            problem = "use_constant_amax and constant_amax are mutually exclusive (ModelOpt refuses both)";
            return null;
        }
        return new QuantizerFormat(numBits, blockSize, scaleBits, blockType)
        {
            Axis = axis, UseConstantAmax = useConstantAmax, ConstantAmax = constantAmax, OtherBlockAxes = otherBlockAxes,
        };
    }

    /// <summary><c>e2m1</c>, <c>[2, 1]</c> and <c>(2, 1)</c> all name E2M1; integers name integer formats.</summary>
    private static string? Bits(JsonNode? node) => node switch
    {
        JsonArray { Count: 2 } a => $"e{a[0]}m{a[1]}",
        JsonValue v when v.TryGetValue(out string? s) => s.Trim().ToLowerInvariant() switch
        {
            "(2, 1)" or "(2,1)" => "e2m1",
            "(4, 3)" or "(4,3)" => "e4m3",
            var other => other,
        },
        JsonValue v when Integer(v) is { } n => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => null,
    };

    /// <summary>A number whether the tree came from JSON text, from YAML, or was built in code.</summary>
    private static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        && double.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double n)
            ? n
            : null;

    /// <summary>An integer whether the tree came from JSON text, from YAML, or was built in code.</summary>
    private static long? Integer(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        && long.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long n)
            ? n
            : null;
}
