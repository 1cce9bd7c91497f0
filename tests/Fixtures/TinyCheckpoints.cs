using System.Text.Json.Nodes;

namespace ModelOptPS.Fixtures;

/// <summary>
/// Recipes for every supported family in its exact on-disk layout (shared/reference/architectures.md §2-3):
/// dense Llama / Qwen2 / Qwen3, per-expert Qwen3-MoE, Mixtral, Qwen3-Next (with MTP), and the fused-expert
/// Qwen3.5-MoE multimodal wrapper with <c>architectures: null</c>, vision tower and MTP head.
/// </summary>
public static class TinyCheckpoints
{
    /// <summary>Family names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Families { get; } =
        ["llama", "qwen2", "qwen3", "qwen3_moe", "mixtral", "qwen3_next", "qwen3_5_moe"];

    public static CheckpointRecipe Create(string family, Dims? dims = null)
    {
        var d = dims ?? Dims.Tiny;
        return family switch
        {
            "llama" => Llama(d),
            "qwen2" => Qwen2(d),
            "qwen3" => Qwen3(d),
            "qwen3_moe" => Qwen3Moe(d),
            "mixtral" => Mixtral(d),
            "qwen3_next" => Qwen3Next(d),
            "qwen3_5_moe" => Qwen3_5Moe(d),
            _ => throw new ArgumentException($"Unknown fixture family '{family}'. Known: {string.Join(", ", Families)}.", nameof(family)),
        };
    }

    /// <summary>Writes a family's checkpoint into <paramref name="folder"/> and returns the folder.</summary>
    public static string Write(string family, string folder, Dims? dims = null, int seed = 1234, long maxShardBytes = 10_000_000_000) =>
        Create(family, dims).Write(folder, seed, maxShardBytes);

    private static JsonObject BaseConfig(Dims d, string architecture, string modelType) => new()
    {
        ["architectures"] = new JsonArray(architecture),
        ["model_type"] = modelType,
        ["hidden_size"] = d.Hidden,
        ["intermediate_size"] = d.Intermediate,
        ["num_hidden_layers"] = d.Layers,
        ["num_attention_heads"] = d.Heads,
        ["num_key_value_heads"] = d.KvHeads,
        ["head_dim"] = d.HeadDim,
        ["vocab_size"] = d.Vocab,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = 1000000.0,
        ["max_position_embeddings"] = 4096,
        ["hidden_act"] = "silu",
        ["tie_word_embeddings"] = false,
        ["torch_dtype"] = "bfloat16",
    };

    private static CheckpointRecipe Llama(Dims d)
    {
        var config = BaseConfig(d, "LlamaForCausalLM", "llama");
        config["rope_theta"] = 500000.0;
        config["rms_norm_eps"] = 1e-5;
        config["attention_bias"] = false;
        config["mlp_bias"] = false;
        var r = new CheckpointRecipe("llama", config);
        Embeddings(r, d, "model.", tied: false);
        for (int l = 0; l < d.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Attention(r, d, p, bias: false, qkNorm: false, gatedQuery: false);
            DenseMlp(r, d, p + "mlp.", d.Intermediate);
            LayerNorms(r, d, p, Fill.Ones);
        }
        return r;
    }

    private static CheckpointRecipe Qwen2(Dims d)
    {
        var config = BaseConfig(d, "Qwen2ForCausalLM", "qwen2");
        config.Remove("head_dim"); // Qwen2 configs have none: head_dim = hidden / heads
        config["tie_word_embeddings"] = true;
        var r = new CheckpointRecipe("qwen2", config);
        var q = d with { HeadDim = d.Hidden / d.Heads };
        Embeddings(r, q, "model.", tied: true);
        for (int l = 0; l < q.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Attention(r, q, p, bias: true, qkNorm: false, gatedQuery: false);
            DenseMlp(r, q, p + "mlp.", q.Intermediate);
            LayerNorms(r, q, p, Fill.Ones);
        }
        return r;
    }

    private static CheckpointRecipe Qwen3(Dims d)
    {
        var config = BaseConfig(d, "Qwen3ForCausalLM", "qwen3");
        // transformers v5 layout: rope settings under rope_parameters.
        config.Remove("rope_theta");
        config["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 1000000.0 };
        config["tie_word_embeddings"] = true;
        config.Remove("torch_dtype");
        config["dtype"] = "bfloat16";
        var r = new CheckpointRecipe("qwen3", config);
        Embeddings(r, d, "model.", tied: true);
        for (int l = 0; l < d.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Attention(r, d, p, bias: false, qkNorm: true, gatedQuery: false);
            DenseMlp(r, d, p + "mlp.", d.Intermediate);
            LayerNorms(r, d, p, Fill.Ones);
        }
        return r;
    }

    private static CheckpointRecipe Qwen3Moe(Dims d)
    {
        var config = BaseConfig(d, "Qwen3MoeForCausalLM", "qwen3_moe");
        config["num_experts"] = d.Experts;
        config["num_experts_per_tok"] = d.TopK;
        config["moe_intermediate_size"] = d.ExpertIntermediate;
        config["norm_topk_prob"] = true;
        config["decoder_sparse_step"] = 1;
        config["mlp_only_layers"] = new JsonArray();
        var r = new CheckpointRecipe("qwen3_moe", config);
        Embeddings(r, d, "model.", tied: false);
        for (int l = 0; l < d.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Attention(r, d, p, bias: false, qkNorm: true, gatedQuery: false);
            r.Add(p + "mlp.gate.weight", [d.Experts, d.Hidden]);
            for (int e = 0; e < d.Experts; e++) DenseMlp(r, d, $"{p}mlp.experts.{e}.", d.ExpertIntermediate);
            LayerNorms(r, d, p, Fill.Ones);
        }
        return r;
    }

    private static CheckpointRecipe Mixtral(Dims d)
    {
        var config = BaseConfig(d, "MixtralForCausalLM", "mixtral");
        config["num_local_experts"] = d.Experts / 2;
        config["num_experts_per_tok"] = d.TopK;
        config["intermediate_size"] = d.ExpertIntermediate * 2;
        config["rms_norm_eps"] = 1e-5;
        config["sliding_window"] = null;
        config.Remove("head_dim");
        var m = d with { HeadDim = d.Hidden / d.Heads };
        var r = new CheckpointRecipe("mixtral", config);
        Embeddings(r, m, "model.", tied: false);
        for (int l = 0; l < m.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Attention(r, m, p, bias: false, qkNorm: false, gatedQuery: false);
            r.Add(p + "block_sparse_moe.gate.weight", [m.Experts / 2, m.Hidden]);
            for (int e = 0; e < m.Experts / 2; e++)
            {
                string x = $"{p}block_sparse_moe.experts.{e}.";
                r.Add(x + "w1.weight", [m.ExpertIntermediate * 2, m.Hidden]);
                r.Add(x + "w3.weight", [m.ExpertIntermediate * 2, m.Hidden]);
                r.Add(x + "w2.weight", [m.Hidden, m.ExpertIntermediate * 2]);
            }
            LayerNorms(r, m, p, Fill.Ones);
        }
        return r;
    }

    private static CheckpointRecipe Qwen3Next(Dims d)
    {
        var config = BaseConfig(d, "Qwen3NextForCausalLM", "qwen3_next");
        HybridConfig(config, d);
        config["norm_topk_prob"] = true;
        config["decoder_sparse_step"] = 1;
        config["mlp_only_layers"] = new JsonArray();
        config["partial_rotary_factor"] = 0.25;
        var layers = d with { Layers = Math.Max(d.Layers, d.FullAttentionInterval) };
        config["num_hidden_layers"] = layers.Layers;
        var r = new CheckpointRecipe("qwen3_next", config);
        Embeddings(r, layers, "model.", tied: false);
        for (int l = 0; l < layers.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            if ((l + 1) % layers.FullAttentionInterval == 0) Attention(r, layers, p, bias: false, qkNorm: true, gatedQuery: true);
            else LinearAttention(r, layers, p + "linear_attn.", grouped: true);
            MoeWithSharedExpert(r, layers, p + "mlp.", fused: false);
            LayerNorms(r, layers, p, Fill.Zeros);
        }
        Mtp(r, layers, fused: false);
        return r;
    }

    private static CheckpointRecipe Qwen3_5Moe(Dims d)
    {
        var layers = d with { Layers = Math.Max(d.Layers, d.FullAttentionInterval) };
        var text = BaseConfig(layers, "unused", "qwen3_5_moe_text");
        text.Remove("architectures");
        text.Remove("intermediate_size");
        text.Remove("rope_theta");
        text.Remove("torch_dtype");
        text["dtype"] = "bfloat16";
        HybridConfig(text, layers);
        text["rope_parameters"] = new JsonObject
        {
            ["rope_type"] = "default",
            ["rope_theta"] = 10000000.0,
            ["partial_rotary_factor"] = 0.25,
            ["mrope_section"] = new JsonArray(2, 1, 1),
            ["mrope_interleaved"] = true,
        };
        var types = new JsonArray();
        for (int l = 0; l < layers.Layers; l++)
            types.Add((l + 1) % layers.FullAttentionInterval == 0 ? "full_attention" : "linear_attention");
        text["layer_types"] = types;
        text["mtp_num_hidden_layers"] = 1;
        text["attn_output_gate"] = true;
        var config = new JsonObject
        {
            ["architectures"] = null, // as in fine-tuned checkpoints: the first of the seed bug's four failures
            ["model_type"] = "qwen3_5_moe",
            ["text_config"] = text,
            ["vision_config"] = new JsonObject
            {
                ["depth"] = layers.VisionDepth, ["hidden_size"] = layers.VisionHidden, ["intermediate_size"] = layers.VisionIntermediate,
                ["num_heads"] = 2, ["patch_size"] = layers.VisionPatch, ["num_position_embeddings"] = layers.VisionPositions,
                ["out_hidden_size"] = layers.Hidden,
            },
            ["image_token_id"] = 248056,
            ["tie_word_embeddings"] = false,
        };
        var r = new CheckpointRecipe("qwen3_5_moe", config);
        const string t = "model.language_model.";
        Embeddings(r, layers, t, tied: false);
        r.Add("lm_head.weight", [layers.Vocab, layers.Hidden]);
        for (int l = 0; l < layers.Layers; l++)
        {
            string p = $"{t}layers.{l}.";
            if ((l + 1) % layers.FullAttentionInterval == 0) Attention(r, layers, p, bias: false, qkNorm: true, gatedQuery: true);
            else LinearAttention(r, layers, p + "linear_attn.", grouped: false);
            MoeWithSharedExpert(r, layers, p + "mlp.", fused: true);
            LayerNorms(r, layers, p, Fill.Zeros);
        }
        VisionTower(r, layers);
        Mtp(r, layers, fused: true);
        return r;
    }

    private static void HybridConfig(JsonObject config, Dims d)
    {
        config["num_experts"] = d.Experts;
        config["num_experts_per_tok"] = d.TopK;
        config["moe_intermediate_size"] = d.ExpertIntermediate;
        config["shared_expert_intermediate_size"] = d.SharedIntermediate;
        config["full_attention_interval"] = d.FullAttentionInterval;
        config["linear_num_key_heads"] = d.LinearKeyHeads;
        config["linear_num_value_heads"] = d.LinearValueHeads;
        config["linear_key_head_dim"] = d.LinearKeyDim;
        config["linear_value_head_dim"] = d.LinearValueDim;
        config["linear_conv_kernel_dim"] = d.ConvKernel;
    }

    private static void Embeddings(CheckpointRecipe r, Dims d, string prefix, bool tied)
    {
        r.Add(prefix + "embed_tokens.weight", [d.Vocab, d.Hidden]);
        r.Add(prefix + "norm.weight", [d.Hidden], prefix.Contains("language_model") ? Fill.Zeros : Fill.Ones);
        if (!tied && !prefix.Contains("language_model")) r.Add("lm_head.weight", [d.Vocab, d.Hidden]);
    }

    private static void LayerNorms(CheckpointRecipe r, Dims d, string p, Fill fill)
    {
        r.Add(p + "input_layernorm.weight", [d.Hidden], fill);
        r.Add(p + "post_attention_layernorm.weight", [d.Hidden], fill);
    }

    private static void Attention(CheckpointRecipe r, Dims d, string p, bool bias, bool qkNorm, bool gatedQuery)
    {
        string a = p + "self_attn.";
        int q = d.Heads * d.HeadDim, kv = d.KvHeads * d.HeadDim;
        r.Add(a + "q_proj.weight", [gatedQuery ? 2 * q : q, d.Hidden]);
        r.Add(a + "k_proj.weight", [kv, d.Hidden]);
        r.Add(a + "v_proj.weight", [kv, d.Hidden]);
        r.Add(a + "o_proj.weight", [d.Hidden, q]);
        if (bias)
        {
            r.Add(a + "q_proj.bias", [q], Fill.Zeros);
            r.Add(a + "k_proj.bias", [kv], Fill.Zeros);
            r.Add(a + "v_proj.bias", [kv], Fill.Zeros);
        }
        if (qkNorm)
        {
            var fill = gatedQuery ? Fill.Zeros : Fill.Ones;
            r.Add(a + "q_norm.weight", [d.HeadDim], fill);
            r.Add(a + "k_norm.weight", [d.HeadDim], fill);
        }
    }

    private static void DenseMlp(CheckpointRecipe r, Dims d, string p, int intermediate)
    {
        r.Add(p + "gate_proj.weight", [intermediate, d.Hidden]);
        r.Add(p + "up_proj.weight", [intermediate, d.Hidden]);
        r.Add(p + "down_proj.weight", [d.Hidden, intermediate]);
    }

    private static void LinearAttention(CheckpointRecipe r, Dims d, string p, bool grouped)
    {
        int keys = d.LinearKeyHeads * d.LinearKeyDim, values = d.LinearValueHeads * d.LinearValueDim;
        if (grouped)
        {
            // Qwen3-Next: q, k, v, z grouped per key head in one projection; b and a in another.
            r.Add(p + "in_proj_qkvz.weight", [2 * keys + 2 * values, d.Hidden]);
            r.Add(p + "in_proj_ba.weight", [2 * d.LinearValueHeads, d.Hidden]);
        }
        else
        {
            // Qwen3.5: split projections.
            r.Add(p + "in_proj_qkv.weight", [2 * keys + values, d.Hidden]);
            r.Add(p + "in_proj_z.weight", [values, d.Hidden]);
            r.Add(p + "in_proj_b.weight", [d.LinearValueHeads, d.Hidden]);
            r.Add(p + "in_proj_a.weight", [d.LinearValueHeads, d.Hidden]);
        }
        r.Add(p + "conv1d.weight", [2 * keys + values, 1, d.ConvKernel]);
        r.Add(p + "A_log", [d.LinearValueHeads], Fill.Zeros, ModelOptPS.Engine.Safetensors.DType.F32);
        r.Add(p + "dt_bias", [d.LinearValueHeads], Fill.Ones);
        r.Add(p + "norm.weight", [d.LinearValueDim], Fill.Ones);
        r.Add(p + "out_proj.weight", [d.Hidden, values]);
    }

    private static void MoeWithSharedExpert(CheckpointRecipe r, Dims d, string p, bool fused)
    {
        r.Add(p + "gate.weight", [d.Experts, d.Hidden]);
        if (fused)
        {
            r.Add(p + "experts.gate_up_proj", [d.Experts, 2 * d.ExpertIntermediate, d.Hidden]);
            r.Add(p + "experts.down_proj", [d.Experts, d.Hidden, d.ExpertIntermediate]);
        }
        else
        {
            for (int e = 0; e < d.Experts; e++) DenseMlp(r, d, $"{p}experts.{e}.", d.ExpertIntermediate);
        }
        DenseMlp(r, d, p + "shared_expert.", d.SharedIntermediate);
        r.Add(p + "shared_expert_gate.weight", [1, d.Hidden]);
    }

    private static void Mtp(CheckpointRecipe r, Dims d, bool fused)
    {
        r.Add("mtp.fc.weight", [d.Hidden, 2 * d.Hidden]);
        r.Add("mtp.pre_fc_norm_embedding.weight", [d.Hidden], Fill.Zeros);
        r.Add("mtp.pre_fc_norm_hidden.weight", [d.Hidden], Fill.Zeros);
        r.Add("mtp.norm.weight", [d.Hidden], Fill.Zeros);
        Attention(r, d, "mtp.layers.0.", bias: false, qkNorm: true, gatedQuery: true);
        MoeWithSharedExpert(r, d, "mtp.layers.0.mlp.", fused);
        LayerNorms(r, d, "mtp.layers.0.", Fill.Zeros);
    }

    private static void VisionTower(CheckpointRecipe r, Dims d)
    {
        const string v = "model.visual.";
        int h = d.VisionHidden, patch = d.VisionPatch;
        r.Add(v + "patch_embed.proj.weight", [h, 3, 2, patch, patch]);
        r.Add(v + "patch_embed.proj.bias", [h], Fill.Zeros);
        r.Add(v + "pos_embed.weight", [d.VisionPositions, h]);
        for (int i = 0; i < d.VisionDepth; i++)
        {
            string b = $"{v}blocks.{i}.";
            foreach (var norm in new[] { "norm1", "norm2" })
            {
                r.Add(b + norm + ".weight", [h], Fill.Ones);
                r.Add(b + norm + ".bias", [h], Fill.Zeros);
            }
            r.Add(b + "attn.qkv.weight", [3 * h, h]);
            r.Add(b + "attn.qkv.bias", [3 * h], Fill.Zeros);
            r.Add(b + "attn.proj.weight", [h, h]);
            r.Add(b + "attn.proj.bias", [h], Fill.Zeros);
            r.Add(b + "mlp.linear_fc1.weight", [d.VisionIntermediate, h]);
            r.Add(b + "mlp.linear_fc1.bias", [d.VisionIntermediate], Fill.Zeros);
            r.Add(b + "mlp.linear_fc2.weight", [h, d.VisionIntermediate]);
            r.Add(b + "mlp.linear_fc2.bias", [h], Fill.Zeros);
        }
        r.Add(v + "merger.norm.weight", [h], Fill.Ones);
        r.Add(v + "merger.norm.bias", [h], Fill.Zeros);
        r.Add(v + "merger.linear_fc1.weight", [4 * h, 4 * h]);
        r.Add(v + "merger.linear_fc2.weight", [d.Hidden, 4 * h]);
    }
}
