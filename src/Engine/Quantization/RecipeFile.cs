using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// Loads a recipe in ModelOpt's <c>quant_cfg</c> shape from JSON or YAML: the list form
/// (<c>- quantizer_name: …, enable: …, cfg: {num_bits, block_sizes}</c>, optional <c>parent_class</c>), the older
/// mapping form (<c>'*weight_quantizer': {num_bits, block_sizes, enable}</c>), and ModelOpt's <c>$import</c> of units
/// (resolved beside the file in a ModelOpt recipe tree, else from the built-in copies of the standard units).
/// </summary>
public static class RecipeFile
{
    private const int MaxImportDepth = 8;

    /// <summary>
    /// The standard units ModelOpt's NVFP4, FP8 and KV-cache recipes import (and the Qwen3.5 snippet its MoE recipe
    /// imports), so those recipe files load without a ModelOpt checkout. A file found beside the recipe wins.
    /// </summary>
    private static readonly Dictionary<string, Func<JsonNode>> BuiltInUnits = new(StringComparer.Ordinal)
    {
        ["configs/ptq/units/base_disable_all"] = () => Presets.DisableAll("").ToJson(),
        ["configs/ptq/units/default_disabled_quantizers"] = () => List(Presets.DefaultDisabled()),
        ["configs/numerics/nvfp4"] = () => QuantizerFormat.Nvfp4.ToJson(),
        ["configs/numerics/nvfp4_static"] = () => (QuantizerFormat.Nvfp4 with { BlockType = "static" }).ToJson(),
        ["configs/numerics/fp8"] = () => QuantizerFormat.Fp8.ToJson(),
        ["configs/ptq/units/kv_fp8"] = () => List([Presets.KvCache(QuantizerFormat.Fp8, "")]),
        ["configs/ptq/units/kv_fp8_cast"] = () => List([Presets.KvCache(QuantizerFormat.Fp8Cast, "")]),
        ["configs/ptq/units/w4a4_nvfp4_nvfp4"] = () => List(Pair("*", QuantizerFormat.Nvfp4, inputs: true)),
        ["configs/ptq/units/w4_nvfp4"] = () => List(Pair("*", QuantizerFormat.Nvfp4, inputs: false)),
        ["configs/ptq/units/w8a8_fp8_fp8"] = () => List(Pair("*", QuantizerFormat.Fp8, inputs: true)),
        ["configs/ptq/units/experts_nvfp4"] = () => List(Pair("*.experts.*", QuantizerFormat.Nvfp4, inputs: true)),
        ["huggingface/qwen3_5/ptq/w4a16_nvfp4-fp8_attn-kv_fp8_cast.quant_cfg"] = () => List(Presets.Get("W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST").Entries),
    };

    private static JsonArray List(IEnumerable<RecipeEntry> entries) => new(entries.Select(e => (JsonNode)e.ToJson()).ToArray());

    private static IEnumerable<RecipeEntry> Pair(string scope, QuantizerFormat format, bool inputs)
    {
        yield return new RecipeEntry { Position = 0, Pattern = scope + "weight_quantizer", Format = format, Source = "" };
        if (inputs) yield return new RecipeEntry { Position = 0, Pattern = scope + "input_quantizer", Format = format, Source = "" };
    }

    public static QuantRecipe Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelOptException("RecipeFileNotFound", ErrorKind.ObjectNotFound, $"The recipe file '{path}' does not exist.", path);
        var root = Parse(path);
        var context = new Context(path, root is JsonObject o ? o["imports"] as JsonObject : null, Path.GetFileName(path));
        var body = root is JsonObject { } obj && obj["quantize"] is JsonObject q ? q : root;
        var quantCfg = body is JsonObject b ? b["quant_cfg"] : body;
        if (quantCfg is null)
            throw context.Invalid("has no quant_cfg");
        // ModelOpt writes the algorithm as a name or as a mapping with its method (algorithm: {method: mse, fp8_scale_sweep: true, …}).
        // One it does not implement would give other scales than ModelOpt's: refused, never approximated by another.
        var algorithm = QuantAlgorithm.Parse((body as JsonObject)?["algorithm"], out string name, out string? problem)
            ?? throw new ModelOptException(QuantizationErrorIds.UnsupportedCalibrationAlgorithm, ErrorKind.InvalidArgument,
                $"The recipe file '{path}' calibrates with '{name}': {problem}. Choose one of those, or override the file's with " +
                "Set-QuantConfig -Algorithm.", path);
        var drafts = Entries(quantCfg, context, depth: 0).ToList();
        return QuantRecipe.Build(Path.GetFileNameWithoutExtension(path), drafts, algorithm);
    }

    private static JsonNode? Parse(string path)
    {
        string text = File.ReadAllText(path);
        try
        {
            return Path.GetExtension(path).ToLowerInvariant() is ".yaml" or ".yml"
                ? Documents(YamlToJson.ConvertAll(text), path)
                : JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (Exception ex) when (ex is JsonException or YamlDotNet.Core.YamlException)
        {
            throw new ModelOptException("RecipeInvalid", ErrorKind.InvalidData, $"The recipe file '{path}' cannot be parsed: {ex.Message}", path, ex);
        }
    }

    /// <summary>
    /// ModelOpt's two-document form (<c>config_loader._load_raw_config_with_schema</c>): a header mapping (its
    /// <c>imports</c>), <c>---</c>, then the content; a list content keeps only the header's imports.
    /// </summary>
    private static JsonNode? Documents(IReadOnlyList<JsonNode?> documents, string path)
    {
        switch (documents.Count)
        {
            case 0:
                return null;
            case 1:
                return documents[0];
            case 2 when documents[0] is JsonObject header:
                if (documents[1] is JsonArray list)
                    return new JsonObject { ["imports"] = header["imports"]?.DeepClone(), ["quant_cfg"] = list.DeepClone() };
                var merged = (JsonObject)header.DeepClone();
                if (documents[1] is JsonObject content)
                    foreach (var (key, value) in content) merged[key] = value?.DeepClone();
                return merged;
            default:
                throw new ModelOptException("RecipeInvalid", ErrorKind.InvalidData,
                    $"The recipe file '{path}' has {documents.Count} YAML documents; ModelOpt reads one, or a header mapping and the content.", path);
        }
    }

    private sealed record Context(string Path, JsonObject? Imports, string Source)
    {
        public ModelOptException Invalid(string what) =>
            new("RecipeInvalid", ErrorKind.InvalidData, $"The recipe file '{Path}' {what}.", Path);
    }

    private static IEnumerable<RecipeEntry> Entries(JsonNode quantCfg, Context context, int depth)
    {
        switch (quantCfg)
        {
            case JsonArray list:
                for (int i = 0; i < list.Count; i++)
                {
                    if (list[i] is not JsonObject item) throw context.Invalid($"has quant_cfg item {i + 1} that is not a mapping");
                    if (item["$import"] is JsonValue import)
                    {
                        var (node, imported) = Resolve(import.GetValue<string>(), context, depth);
                        foreach (var e in Entries(node, imported, depth + 1)) yield return e;
                        continue;
                    }
                    yield return Entry(item, context, depth, $"item {i + 1}");
                }
                break;
            case JsonObject single when single.ContainsKey("quantizer_name"):
                // One entry as a mapping (ModelOpt's base_disable_all unit).
                yield return Entry(single, context, depth, "entry");
                break;
            case JsonObject map:
                // ModelOpt's older mapping form: pattern -> cfg (with enable inside); "default" means every quantizer.
                foreach (var (pattern, value) in map)
                {
                    if (value is not JsonObject cfg) throw context.Invalid($"maps '{pattern}' to something that is not a mapping");
                    var item = new JsonObject { ["quantizer_name"] = pattern == "default" ? "*" : pattern };
                    var rest = (JsonObject)cfg.DeepClone();
                    if (rest["enable"] is { } enable) { item["enable"] = enable.DeepClone(); rest.Remove("enable"); }
                    if (rest.Count > 0) item["cfg"] = rest;
                    yield return Entry(item, context, depth, $"'{pattern}'");
                }
                break;
            default:
                throw context.Invalid("has a quant_cfg that is neither a list nor a mapping");
        }
    }

    private static RecipeEntry Entry(JsonObject item, Context context, int depth, string where)
    {
        if (item["quantizer_name"] is not JsonValue nameValue || !nameValue.TryGetValue(out string? pattern))
            throw context.Invalid($"has quant_cfg {where} without a quantizer_name string");
        bool? enable = null;
        if (item["enable"] is { } e)
        {
            if (e is not JsonValue ev || !ev.TryGetValue(out bool flag)) throw context.Invalid($"has quant_cfg {where} whose enable is not true/false");
            enable = flag;
        }
        QuantizerFormat? format = null;
        if (item["cfg"] is { } cfgNode)
        {
            var cfg = CfgObject(cfgNode, context, depth, where);
            if (cfg["enable"] is JsonValue inner && inner.TryGetValue(out bool innerFlag)) enable ??= innerFlag;
            format = QuantizerFormat.Parse(cfg, out var problem)
                ?? throw context.Invalid($"has quant_cfg {where} ('{pattern}') whose cfg is not a quantizer format: {problem}");
        }
        string? parent = item["parent_class"] is JsonValue pv && pv.TryGetValue(out string? p) ? p : null;
        return new RecipeEntry { Position = 0, Pattern = pattern, Enable = enable, Format = format, ParentClass = parent, Source = $"file {context.Source}" };
    }

    /// <summary>A cfg, with a <c>$import</c> of a numerics unit merged under its sibling keys.</summary>
    private static JsonObject CfgObject(JsonNode node, Context context, int depth, string where)
    {
        if (node is JsonArray)
            return new JsonObject { ["num_bits"] = "sequential" }; // W4A8-style chained quantizers: not NVFP4
        if (node is not JsonObject cfg) throw context.Invalid($"has quant_cfg {where} whose cfg is not a mapping");
        if (cfg["$import"] is not JsonValue import) return cfg;
        var (imported, _) = Resolve(import.GetValue<string>(), context, depth);
        if (imported is not JsonObject baseCfg) throw context.Invalid($"imports '{import}' as a cfg, but it is not a mapping");
        var merged = (JsonObject)baseCfg.DeepClone();
        foreach (var (key, value) in cfg)
            if (key != "$import") merged[key] = value?.DeepClone();
        return merged;
    }

    private static (JsonNode Node, Context Context) Resolve(string name, Context context, int depth)
    {
        if (depth >= MaxImportDepth) throw context.Invalid($"imports '{name}' more than {MaxImportDepth} levels deep");
        string reference = context.Imports?[name] is JsonValue v && v.TryGetValue(out string? r) ? r : name;
        foreach (var file in Candidates(context.Path, reference))
        {
            if (!File.Exists(file)) continue;
            var node = Parse(file);
            var imports = node is JsonObject o ? o["imports"] as JsonObject : null;
            var body = node is JsonObject { } obj && obj["quant_cfg"] is { } qc ? qc : node;
            if (body is null) throw context.Invalid($"imports '{file}', which is empty");
            return (body, new Context(file, imports, $"{context.Source} > {System.IO.Path.GetFileName(file)}"));
        }
        if (BuiltInUnits.TryGetValue(reference, out var builtIn))
            return (builtIn(), context with { Source = $"{context.Source} > {reference} (built-in)" });
        throw new ModelOptException("RecipeImportNotFound", ErrorKind.ObjectNotFound,
            $"The recipe file '{context.Path}' imports '{name}' ({reference}); no such file was found in the folders above it " +
            $"and it is not one of the built-in units ({string.Join(", ", BuiltInUnits.Keys)}).", context.Path);
    }

    /// <summary>ModelOpt resolves unit paths against its recipe root: try every folder above the file.</summary>
    private static IEnumerable<string> Candidates(string recipePath, string reference)
    {
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(Path.GetFullPath(recipePath))!); dir is not null; dir = dir.Parent)
        {
            foreach (var ext in new[] { ".yaml", ".yml", ".json", "" })
            {
                yield return Path.Combine(dir.FullName, reference + ext);
                yield return Path.Combine(dir.FullName, "modelopt_recipes", reference + ext);
            }
        }
    }
}
