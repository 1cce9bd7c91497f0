namespace ModelOptPS.Engine.Verification;

/// <summary>What a checkpoint's config files say about its quantization, once read and checked.</summary>
internal sealed record DeclaredQuantization(QuantFormat Format, string? QuantAlgo, bool WeightOnly, ExclusionList Exclusions)
{
    public const string Nvfp4 = "NVFP4";
    public const string W4A16 = "W4A16_NVFP4";

    public static DeclaredQuantization None { get; } = new(QuantFormat.None, null, false, ExclusionList.Empty);

    /// <summary>True when the config declares a quantized KV cache, whose k_scale/v_scale tensors then sit on k/v_proj.</summary>
    public bool KvCacheScales { get; init; }

    /// <summary>True when the format and algorithm are ones this verifier checks tensor by tensor.</summary>
    public bool Verifiable => Format != QuantFormat.None && QuantAlgo is Nvfp4 or W4A16;

    public Nvfp4Naming Naming => Nvfp4Naming.For(Format);

    /// <summary>True for a quantized module's tensors that quantization made (no source counterpart): packed weight, scales.</summary>
    public bool IsQuantizationTensor(string parameter) =>
        Naming.QuantTensors.Contains(parameter) || (KvCacheScales && parameter is "k_scale" or "v_scale");

    /// <summary>The module-level expectation for a Linear the exclusion list does not name.</summary>
    public string ExpectedForQuantized => WeightOnly ? "NVFP4 weight-only (no input scale)" : "NVFP4 with input scale";

    public string Describe => Format switch
    {
        QuantFormat.None => "no quantization config",
        QuantFormat.ModelOpt => $"ModelOpt {QuantAlgo}",
        _ => $"compressed-tensors nvfp4-pack-quantized ({(WeightOnly ? "weight-only" : "W4A4")})",
    };
}
