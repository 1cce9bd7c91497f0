namespace ModelOptPS.Engine.Verification;

/// <summary>
/// One kind of layer a consumer loads as one from several checkpoint modules (an entry of vLLM's
/// <c>packed_modules_mapping</c>, or the per-expert <c>w13</c> of its fused MoE): the shards' last name components
/// under one parent module.
/// </summary>
/// <param name="Name">The consumer's name for the merged layer (<c>qkv_proj</c>, <c>in_proj_qkvz</c>, <c>w13</c>).</param>
/// <param name="Shards">The checkpoint modules it merges, in the consumer's order.</param>
/// <param name="Input">
/// Which hidden states the shards read. Merged layers of one parent that read the same input form one scale group
/// in ModelOpt's export (Qwen3.5 in_proj_qkvz and in_proj_ba: all four Linears share when all are quantized).
/// </param>
/// <param name="PerExpert">True when the parent is one routed expert (<c>…experts.&lt;e&gt;</c>), false when it is not.</param>
internal sealed record MergedLayerKind(string Name, IReadOnlyList<string> Shards, string Input, bool PerExpert = false);
