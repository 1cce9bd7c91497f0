using System.Text.Json.Nodes;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// A quantizer's <c>cfg</c> as ModelOpt writes it (<c>num_bits</c>, <c>block_sizes</c>), reduced to what decides
/// the exported format. ModelOptPS exports NVFP4 only: E2M1 values, 16-element blocks on the last axis, E4M3 scales.
/// Anything else is recognised, described, and refused where it would be applied — never silently treated as NVFP4.
/// </summary>
public sealed record QuantizerFormat(string NumBits, int? BlockSize, string? ScaleBits, string? BlockType)
{
    /// <summary>ModelOpt's <c>configs/numerics/nvfp4</c>.</summary>
    public static QuantizerFormat Nvfp4 { get; } = new("e2m1", 16, "e4m3", "dynamic");

    public bool IsNvfp4 => NumBits == "e2m1" && BlockSize == 16 && ScaleBits == "e4m3";

    public JsonObject ToJson() => new()
    {
        ["num_bits"] = NumBits,
        ["block_sizes"] = new JsonObject { ["-1"] = BlockSize, ["type"] = BlockType, ["scale_bits"] = ScaleBits },
    };

    public override string ToString() => IsNvfp4
        ? $"NVFP4 (e2m1, block 16, e4m3 scales, {BlockType ?? "dynamic"})"
        : $"num_bits {NumBits}" + (BlockSize is { } b ? $", block {b}" : "") + (ScaleBits is { } s ? $", {s} scales" : "");

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
        string? scaleBits = null, blockType = null;
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
                        if (int.TryParse(key, out _)) problem = $"block_sizes on axis {key} (only the last axis, -1, is NVFP4)";
                        break;
                }
            }
        }
        return new QuantizerFormat(numBits, blockSize, scaleBits, blockType);
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

    /// <summary>An integer whether the tree came from JSON text, from YAML, or was built in code.</summary>
    private static long? Integer(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        && long.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long n)
            ? n
            : null;
}
