namespace ModelOptPS.Engine.Verification;

/// <summary>What a checkpoint's config files say about its quantization, once read and checked.</summary>
/// <param name="WeightOnly">True for a single-format W4A16_NVFP4 checkpoint (compressed-tensors weight-only included).</param>
internal sealed record DeclaredQuantization(QuantFormat Format, string? QuantAlgo, bool WeightOnly, ExclusionList Exclusions)
{
    public const string Nvfp4 = "NVFP4";
    public const string W4A16 = "W4A16_NVFP4";
    public const string Fp8 = "FP8";
    public const string MixedPrecision = "MIXED_PRECISION";

    public static DeclaredQuantization None { get; } = new(QuantFormat.None, null, false, ExclusionList.Empty);

    /// <summary><c>FP8</c> when the config declares a quantized KV cache (ModelOpt's only KV format), else null.</summary>
    public string? KvCacheQuantAlgo { get; init; }

    /// <summary>The per-module configs of a MIXED_PRECISION checkpoint; null for a single format.</summary>
    public QuantizedLayers? Layers { get; init; }

    /// <summary>True when the format and algorithm are ones this verifier checks tensor by tensor.</summary>
    public bool Verifiable => Format != QuantFormat.None && QuantAlgo is Nvfp4 or W4A16 or Fp8 or MixedPrecision;

    public Nvfp4Naming Naming => Nvfp4Naming.For(Format);

    /// <summary>
    /// The algorithm the config declares for a module no exclusion entry names: its quantized_layers entry's
    /// (null when there is none: unquantized), or the single format's.
    /// </summary>
    public string? AlgoFor(string module) => Layers is null ? QuantAlgo : Layers.AlgoFor(module);

    /// <summary>True for a quantized module's tensors that quantization made (no source counterpart): weights, scales, KV scales.</summary>
    public bool IsQuantizationTensor(string parameter) => Naming.QuantTensors.Contains(parameter) || KvCacheScales.IsScale(parameter);

    /// <summary>The module-level expectation for a quantized Linear in <paramref name="algo"/>.</summary>
    public static string Expected(string? algo) => algo switch
    {
        W4A16 => "NVFP4 weight-only (no input scale)",
        Nvfp4 => "NVFP4 with input scale",
        Fp8 => "FP8 per-tensor with input scale",
        _ => "unquantized (no quantized_layers entry)",
    };

    public string Describe => Format switch
    {
        QuantFormat.None => "no quantization config",
        QuantFormat.ModelOpt => $"ModelOpt {QuantAlgo}" + (Layers is null ? "" : $" ({Text.Count(Layers.Algos.Count, "quantized_layers entry", "quantized_layers entries")})")
            + (KvCacheQuantAlgo is null ? "" : $", {KvCacheQuantAlgo} KV cache"),
        _ => $"compressed-tensors nvfp4-pack-quantized ({(WeightOnly ? "weight-only" : "W4A4")})",
    };
}
