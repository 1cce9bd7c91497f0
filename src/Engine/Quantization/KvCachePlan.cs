using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>How the KV cache is quantized.</summary>
public enum KvCacheMode
{
    /// <summary>Not quantized (<c>kv_cache_quant_algo: null</c>).</summary>
    None,

    /// <summary>FP8, amax pinned to 448 (ModelOpt's default <c>kv_fp8_cast</c>): no k/v scales written, engines use 1.0.</summary>
    Fp8Cast,

    /// <summary>FP8 with per-layer <c>k_scale</c>/<c>v_scale</c> = amax / 448, amax calibrated (ModelOpt's <c>kv_fp8</c>) or pinned.</summary>
    Fp8Scaled,
}

/// <summary>The KV cache of one softmax-attention block: its <c>k_bmm_quantizer</c> and <c>v_bmm_quantizer</c> after the recipe.</summary>
public sealed record KvCacheLayer(string Attention, QuantizerState Key, QuantizerState Value)
{
    public bool Enabled => Key.Enabled || Value.Enabled;

    /// <summary>This layer's KV cache: None when neither quantizer is enabled, else cast or scaled by its (enabled) quantizers' format.</summary>
    public KvCacheMode Mode => ModeOf(Key.Enabled ? Key : Value);

    /// <summary>What one KV quantizer does: nothing, a cast (<c>use_constant_amax</c>), or scaling by its amax.</summary>
    internal static KvCacheMode ModeOf(QuantizerState quantizer) =>
        !quantizer.Enabled ? KvCacheMode.None : quantizer.Format?.UseConstantAmax == true ? KvCacheMode.Fp8Cast : KvCacheMode.Fp8Scaled;

    /// <summary>Why, for each quantizer: the recipe entry that decided it.</summary>
    public string Reason => Key.DecidedBy == Value.DecidedBy && Key.Enabled == Value.Enabled
        ? $"k and v {Key.Explain()}"
        : $"k {Key.Explain()}; v {Value.Explain()}";

    /// <summary>Where ModelOpt's export writes the key scale (<c>k_bmm_quantizer._amax</c> renamed).</summary>
    public string KeyScaleName => $"{Attention}.k_proj.k_scale";

    /// <summary>Where ModelOpt's export writes the value scale.</summary>
    public string ValueScaleName => $"{Attention}.v_proj.v_scale";
}

/// <summary>
/// The KV-cache part of a plan. The quantizers sit where ModelOpt's attention plugin puts them: keys after their norm and
/// RoPE, values as projected, in every softmax-attention block of the language model with a KV cache (linear-attention
/// layers have none; the MTP head and the vision tower are not part of the model ModelOpt calibrates). Recipes enable them
/// as ModelOpt's do (<c>*[kv]_bmm_quantizer</c> with the FP8 numerics, <c>use_constant_amax</c> for the cast mode).
/// </summary>
public sealed class KvCachePlan
{
    private KvCachePlan(KvCacheMode mode, IReadOnlyList<KvCacheLayer> layers)
    {
        Mode = mode;
        Layers = layers;
    }

    public static KvCachePlan None { get; } = new(KvCacheMode.None, []);

    public KvCacheMode Mode { get; }

    /// <summary>Every attention block with a KV cache, quantized or not.</summary>
    public IReadOnlyList<KvCacheLayer> Layers { get; }

    /// <summary>The blocks whose KV quantizers the recipe enabled.</summary>
    public IEnumerable<KvCacheLayer> QuantizedLayers => Layers.Where(l => l.Enabled);

    /// <summary><c>kv_cache_quant_algo</c>: <c>FP8</c>, or null.</summary>
    public string? QuantAlgo => Mode == KvCacheMode.None ? null : "FP8";

    /// <summary>The KV quantizers whose amax calibration must measure (scaled mode, amax not pinned).</summary>
    public IEnumerable<QuantizerState> CalibratedQuantizers => Mode != KvCacheMode.Fp8Scaled ? [] :
        QuantizedLayers.SelectMany(l => new[] { l.Key, l.Value }).Where(q => q.Enabled && q.Format?.PinnedAmax is null);

    public override string ToString() => Mode switch
    {
        KvCacheMode.None => "KV cache unquantized",
        KvCacheMode.Fp8Cast => $"KV cache FP8 (cast, no scales) in {QuantizedLayers.Count()} attention layer(s)",
        _ => $"KV cache FP8 with k/v scales in {QuantizedLayers.Count()} attention layer(s)",
    };

    /// <summary>The attention blocks with a KV cache: parents of a language-model k_proj that has a v_proj sibling.</summary>
    public static IEnumerable<(string Attention, ModelModule Key, ModelModule Value)> AttentionBlocks(IEnumerable<ModelModule> modules)
    {
        var linears = modules.Where(m => m.Kind == ModuleKind.Linear && m.Section == ModelSection.Text && m.Expert is null).ToList();
        var values = linears.Where(m => m.Role == "v_proj").ToDictionary(m => Parent(m.Name), StringComparer.Ordinal);
        foreach (var key in linears.Where(m => m.Role == "k_proj"))
        {
            string attention = Parent(key.Name);
            if (values.TryGetValue(attention, out var value)) yield return (attention, key, value);
        }
    }

    /// <summary>Applies the recipe to every KV quantizer; refuses formats ModelOptPS cannot write, and mixed modes.</summary>
    public static KvCachePlan Resolve(HFModel model, QuantRecipe recipe, ISet<int> matched, List<string> warnings)
    {
        var layers = AttentionBlocks(model.Modules).Select(b =>
        {
            var quantizers = Quantizer.ForKvCache(b.Attention, b.Key, b.Value);
            return new KvCacheLayer(b.Attention, QuantizerState.Resolve(quantizers[0], recipe, matched), QuantizerState.Resolve(quantizers[1], recipe, matched));
        }).ToList();
        var enabled = layers.SelectMany(l => new[] { l.Key, l.Value }).Where(q => q.Enabled).ToList();
        if (enabled.Count == 0) return new KvCachePlan(KvCacheMode.None, layers);
        foreach (var q in enabled)
        {
            if (q.Format is null)
                throw new ModelOptException(QuantizationErrorIds.QuantizerWithoutFormat, ErrorKind.InvalidArgument,
                    $"KV-cache quantizer '{q.Name}' is enabled by {q.DecidedBy} but no entry gave it a format (cfg); use ModelOpt's FP8 numerics (num_bits: e4m3).", model.Path);
            if (!q.Format.IsFp8PerTensor)
                throw new ModelOptException(QuantizationErrorIds.UnsupportedKvCacheFormat, ErrorKind.InvalidArgument,
                    $"KV-cache quantizer '{q.Name}' is set to {q.Format} by {q.DecidedBy}; ModelOptPS writes FP8 KV caches only " +
                    "(ModelOpt's kv_fp8 and kv_fp8_cast: num_bits e4m3, per tensor). A pattern such as '*self_attn*' reaches the KV " +
                    $"quantizers too: follow it with '{Presets.KvCachePattern}' disabled (or FP8), or pass -KvCache.", model.Path);
        }
        var modes = enabled.Select(KvCacheLayer.ModeOf).Distinct().ToList();
        if (modes.Count > 1)
            throw new ModelOptException(QuantizationErrorIds.KvCacheModesMixed, ErrorKind.InvalidArgument,
                $"Recipe '{recipe.Name}' casts some KV-cache quantizers (use_constant_amax) and scales others (e.g. " +
                $"'{enabled.First(q => !q.Format!.UseConstantAmax).Name}'); engines read one KV-cache format for the whole model. Use one KV unit.", model.Path);
        var partial = layers.Where(l => l.Key.Enabled != l.Value.Enabled).Select(l => l.Attention).ToList();
        var off = layers.Where(l => !l.Enabled).Select(l => l.Attention).ToList();
        if (partial.Count > 0)
            warnings.Add($"the KV cache of {partial.Count} attention layer(s) is quantized for keys or values only ({string.Join(", ", partial.Take(3))}); " +
                         "engines quantize both, with scale 1.0 where none is written");
        if (off.Count > 0)
            warnings.Add($"the recipe leaves the KV cache of {off.Count} of {layers.Count} attention layer(s) unquantized ({string.Join(", ", off.Take(3))}); " +
                         "engines apply kv_cache_quant_algo FP8 to every layer, with scale 1.0 where none is written");
        return new KvCachePlan(modes[0], layers);
    }

    private static string Parent(string name) => name[..Math.Max(0, name.LastIndexOf('.'))];
}
