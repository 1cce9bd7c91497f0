namespace ModelOptPS.Engine.Model;

/// <summary>What a module of the checkpoint is, as far as quantization is concerned.</summary>
public enum ModuleKind
{
    /// <summary>A 2-D <c>weight</c> used as <c>y = x W^T</c>: the only kind NVFP4 applies to (plus fused experts).</summary>
    Linear,

    /// <summary>An experts container with 3-D <c>gate_up_proj [E, 2I, H]</c> and <c>down_proj [E, H, I]</c>.</summary>
    FusedExperts,

    /// <summary>An MoE router or a shared-expert gate: tiny Linears that pick experts; never quantized.</summary>
    Router,

    Embedding,
    Norm,
    Conv,

    /// <summary>Bare parameters (e.g. <c>A_log</c>, <c>dt_bias</c>) and anything not recognised.</summary>
    Other,
}

/// <summary>Which part of the checkpoint a module belongs to.</summary>
public enum ModelSection
{
    /// <summary>The language model (embeddings, decoder layers, final norm, lm_head).</summary>
    Text,

    /// <summary>A vision tower of a multimodal wrapper (<c>model.visual.*</c>).</summary>
    Vision,

    /// <summary>The multi-token-prediction head (<c>mtp.*</c>).</summary>
    Mtp,
}
