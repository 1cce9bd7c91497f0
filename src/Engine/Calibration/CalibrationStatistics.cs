namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// What calibration measured: for every input quantizer (keyed by its ModelOpt name, e.g.
/// <c>model.layers.0.self_attn.q_proj.input_quantizer</c> or <c>…mlp.experts.gate_up_proj_input_quantizer</c>) and
/// every KV-cache quantizer (<c>model.layers.0.self_attn.k_bmm_quantizer</c>, <c>…v_bmm_quantizer</c>), the running max
/// of |x| over all calibration tokens in the unquantized model, and for NVFP4 inputs the histogram of per-block amaxes;
/// for MoE layers, how many tokens each expert saw; optionally the Hessian blocks of every weight unit.
/// <see cref="InputAmax"/> is what <see cref="ActivationCalibrator"/> makes of the raw data; switch calibrators with
/// <see cref="WithActivationCalibrator"/> without running calibration again.
/// Export derives <c>input_scale</c> (NVFP4 amax / 2688 after sharing amax across fused groups, FP8 amax / 448) and the
/// KV cache's <c>k_scale</c>/<c>v_scale</c> (amax / 448) from <see cref="InputAmax"/>.
/// </summary>
public sealed class CalibrationStatistics
{
    private static readonly IReadOnlyDictionary<string, BlockAmaxHistogram> NoHistograms = new Dictionary<string, BlockAmaxHistogram>();
    private static readonly IReadOnlyDictionary<string, HessianBlocks> NoHessians = new Dictionary<string, HessianBlocks>();

    /// <summary>Max statistics only (a file, a test): every calibrator gives these amaxes.</summary>
    public CalibrationStatistics(IReadOnlyDictionary<string, float> inputAmax,
        IReadOnlyDictionary<string, long[]>? tokensPerExpert = null, long tokens = 0, string source = "calibration")
        : this(inputAmax, NoHistograms, NoHessians, tokensPerExpert, tokens, source)
    {
    }

    /// <summary>Everything a calibration run collected, read with <see cref="ActivationCalibrator.Max"/>.</summary>
    public CalibrationStatistics(IReadOnlyDictionary<string, float> maxAmax, IReadOnlyDictionary<string, BlockAmaxHistogram> activationHistograms,
        IReadOnlyDictionary<string, HessianBlocks> hessianBlocks, IReadOnlyDictionary<string, long[]>? tokensPerExpert, long tokens, string source)
        : this(maxAmax, activationHistograms, hessianBlocks, tokensPerExpert ?? new Dictionary<string, long[]>(), tokens, source,
            ActivationCalibrator.Max, HeadroomSettings.Default, maxAmax)
    {
    }

    private CalibrationStatistics(IReadOnlyDictionary<string, float> maxAmax, IReadOnlyDictionary<string, BlockAmaxHistogram> activationHistograms,
        IReadOnlyDictionary<string, HessianBlocks> hessianBlocks, IReadOnlyDictionary<string, long[]> tokensPerExpert, long tokens, string source,
        ActivationCalibrator calibrator, HeadroomSettings headroom, IReadOnlyDictionary<string, float> inputAmax)
    {
        MaxAmax = maxAmax;
        ActivationHistograms = activationHistograms;
        HessianBlocks = hessianBlocks;
        TokensPerExpert = tokensPerExpert;
        Tokens = tokens;
        Source = source;
        ActivationCalibrator = calibrator;
        Headroom = headroom;
        InputAmax = inputAmax;
    }

    /// <summary>Quantizer name (Linear inputs and KV cache) to its amax under <see cref="ActivationCalibrator"/>.</summary>
    public IReadOnlyDictionary<string, float> InputAmax { get; }

    /// <summary>The calibrator <see cref="InputAmax"/> comes from.</summary>
    public ActivationCalibrator ActivationCalibrator { get; }

    /// <summary>The headroom parameters (used when <see cref="ActivationCalibrator"/> is Headroom).</summary>
    public HeadroomSettings Headroom { get; }

    /// <summary>Quantizer name to max |x| seen there (the raw running max, whatever the calibrator).</summary>
    public IReadOnlyDictionary<string, float> MaxAmax { get; }

    /// <summary>NVFP4 input quantizer name to its per-block amax histogram (what headroom reads).</summary>
    public IReadOnlyDictionary<string, BlockAmaxHistogram> ActivationHistograms { get; }

    /// <summary>
    /// Weight unit to the block diagonal of its XᵀX/N: a Linear's module name (<c>model.layers.0.self_attn.q_proj</c>,
    /// per-expert <c>…block_sparse_moe.experts.3.w1</c>) or one expert of fused experts
    /// (<c>…mlp.experts.3.gate_up_proj</c> / <c>down_proj</c>, tokens routed to expert 3; every token with
    /// <see cref="CalibrationOptions.AllExperts"/>, as that option asks). Empty unless
    /// <see cref="CalibrationOptions.CollectHessians"/> was set.
    /// </summary>
    public IReadOnlyDictionary<string, HessianBlocks> HessianBlocks { get; }

    /// <summary>Experts container name (e.g. <c>model.layers.3.mlp.experts</c>) to tokens routed to each expert.</summary>
    public IReadOnlyDictionary<string, long[]> TokensPerExpert { get; }

    /// <summary>Calibration tokens run through the model.</summary>
    public long Tokens { get; }

    /// <summary>Where the numbers came from (calibration run, a file, a test).</summary>
    public string Source { get; }

    /// <summary>
    /// The same statistics with <see cref="InputAmax"/> computed by <paramref name="calibrator"/>: headroom for every
    /// quantizer with a histogram (NVFP4 inputs), the max for the rest (FP8 inputs, KV cache) — as ModelOpt swaps its
    /// headroom calibrator in for NVFP4 dynamic-block input quantizers only.
    /// </summary>
    public CalibrationStatistics WithActivationCalibrator(ActivationCalibrator calibrator, HeadroomSettings? headroom = null)
    {
        var settings = (headroom ?? Headroom).Validated();
        var amax = calibrator == ActivationCalibrator.Max
            ? MaxAmax
            : MaxAmax.ToDictionary(kv => kv.Key,
                kv => ActivationHistograms.TryGetValue(kv.Key, out var histogram) && HeadroomCalibrator.Amax(histogram, settings) is { } a ? a : kv.Value,
                StringComparer.Ordinal);
        return new CalibrationStatistics(MaxAmax, ActivationHistograms, HessianBlocks, TokensPerExpert, Tokens, Source, calibrator, settings, amax);
    }
}
