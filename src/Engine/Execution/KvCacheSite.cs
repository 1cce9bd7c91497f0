namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Where an attention block's KV cache is observed, named as ModelOpt's attention plugin names its quantizers
/// (<c>&lt;attention&gt;.k_bmm_quantizer</c>, <c>&lt;attention&gt;.v_bmm_quantizer</c>, the attention being the parent of
/// k_proj): the keys after their norm and RoPE and the values as projected, as handed to the attention function
/// (before GQA repeats them), which is what an engine writes into its cache.
/// </summary>
internal readonly record struct KvCacheSite(string Attention)
{
    public string KeyQuantizer => Attention + ".k_bmm_quantizer";

    public string ValueQuantizer => Attention + ".v_bmm_quantizer";
}
