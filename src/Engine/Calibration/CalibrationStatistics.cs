namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// What calibration measured: for every input quantizer (keyed by its ModelOpt name, e.g.
/// <c>model.layers.0.self_attn.q_proj.input_quantizer</c> or <c>…mlp.experts.gate_up_proj_input_quantizer</c>) and
/// every KV-cache quantizer (<c>model.layers.0.self_attn.k_bmm_quantizer</c>, <c>…v_bmm_quantizer</c>), the running max
/// of |x| over all calibration tokens in the unquantized model; and, for MoE layers, how many tokens each expert saw.
/// Export derives <c>input_scale</c> (NVFP4 amax / 2688 after sharing amax across fused groups, FP8 amax / 448) and the
/// KV cache's <c>k_scale</c>/<c>v_scale</c> (amax / 448) from it.
/// </summary>
public sealed class CalibrationStatistics
{
    public CalibrationStatistics(IReadOnlyDictionary<string, float> inputAmax,
        IReadOnlyDictionary<string, long[]>? tokensPerExpert = null, long tokens = 0, string source = "calibration")
    {
        InputAmax = inputAmax;
        TokensPerExpert = tokensPerExpert ?? new Dictionary<string, long[]>();
        Tokens = tokens;
        Source = source;
    }

    /// <summary>Quantizer name (Linear inputs and KV cache) to max |x| seen there.</summary>
    public IReadOnlyDictionary<string, float> InputAmax { get; }

    /// <summary>Experts container name (e.g. <c>model.layers.3.mlp.experts</c>) to tokens routed to each expert.</summary>
    public IReadOnlyDictionary<string, long[]> TokensPerExpert { get; }

    /// <summary>Calibration tokens run through the model.</summary>
    public long Tokens { get; }

    /// <summary>Where the numbers came from (calibration run, a file, a test).</summary>
    public string Source { get; }
}
