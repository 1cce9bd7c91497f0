using System.Text.Json.Nodes;

namespace ModelOptPS.TrainSample;

/// <summary>The sample model's Qwen3-MoE dimensions, and the config.json transformers reads them from.</summary>
internal sealed record SampleShape
{
    public int Layers { get; init; } = 4;
    public int Hidden { get; init; } = 256;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int HeadDim { get; init; } = 64;
    public int Experts { get; init; } = 16;
    public int ExpertWidth { get; init; } = 128;
    public int TopK { get; init; } = 4;
    public int VocabSize { get; init; } = 2048;
    public double RopeTheta { get; init; } = 1_000_000.0;
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>
    /// Ten times Qwen3-MoE's 0.001: at 0.001 one expert of layer 1 received none of the 74,752 held-out routing choices
    /// (and another 0.01%); an expert calibration never sees makes a poor sample for quantization.
    /// </summary>
    public double RouterAuxLossCoef { get; init; } = 0.01;
    public double InitializerRange { get; init; } = 0.02;

    /// <param name="maxPositions">The trained sequence length: positions beyond it were never seen in training.</param>
    public JsonObject ConfigJson(int eosId, int maxPositions) => new()
    {
        ["architectures"] = new JsonArray("Qwen3MoeForCausalLM"),
        ["model_type"] = "qwen3_moe",
        ["hidden_size"] = Hidden,
        // Only dense layers (none here: decoder_sparse_step 1, mlp_only_layers []) use it; Qwen3-MoE configs carry it anyway.
        ["intermediate_size"] = 4 * ExpertWidth,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = KvHeads,
        ["head_dim"] = HeadDim,
        ["num_experts"] = Experts,
        ["num_experts_per_tok"] = TopK,
        ["moe_intermediate_size"] = ExpertWidth,
        ["norm_topk_prob"] = true,
        ["decoder_sparse_step"] = 1,
        ["mlp_only_layers"] = new JsonArray(),
        ["output_router_logits"] = false,
        ["router_aux_loss_coef"] = RouterAuxLossCoef,
        ["vocab_size"] = VocabSize,
        ["max_position_embeddings"] = maxPositions,
        ["rope_theta"] = RopeTheta,
        ["rope_scaling"] = null,
        ["rms_norm_eps"] = RmsNormEps,
        ["hidden_act"] = "silu",
        ["attention_bias"] = false,
        ["attention_dropout"] = 0.0,
        ["use_sliding_window"] = false,
        ["sliding_window"] = null,
        ["max_window_layers"] = Layers,
        ["initializer_range"] = InitializerRange,
        ["tie_word_embeddings"] = false,
        ["use_cache"] = true,
        ["bos_token_id"] = eosId,
        ["eos_token_id"] = eosId,
        ["torch_dtype"] = "bfloat16",
        ["transformers_version"] = "4.51.0",
    };

    public static JsonObject GenerationConfigJson(int eosId) => new()
    {
        ["bos_token_id"] = eosId,
        ["eos_token_id"] = eosId,
        ["pad_token_id"] = eosId,
        ["do_sample"] = false,
        ["transformers_version"] = "4.51.0",
    };
}
