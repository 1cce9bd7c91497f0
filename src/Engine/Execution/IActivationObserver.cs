using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Sees what a calibrator needs while <see cref="ModelRunner"/> runs the model: the exact input of every Linear (the
/// tensor its input quantizer would see), the keys and values every attention block caches, and the experts each token
/// was routed to. Tensors are valid only during the
/// call (the runner frees them afterwards): reduce them (e.g. <c>abs().amax()</c>) or clone them, never keep them.
/// Tensors are in the runner's compute dtype, on its device; rows are tokens, the last dimension a Linear's in-features.
/// </summary>
public interface IActivationObserver
{
    /// <summary>
    /// The input of one Linear, named as ModelOpt names its input quantizer: <c>&lt;module&gt;.input_quantizer</c>
    /// (q/k/v each under its own name with the same tensor; per-expert Linears as
    /// <c>&lt;experts&gt;.&lt;e&gt;.gate_proj.input_quantizer</c>), or for fused experts the tokens gathered for one
    /// expert under the shared <c>&lt;experts&gt;.gate_up_proj_input_quantizer</c> / <c>down_proj_input_quantizer</c>
    /// (called once per expert that runs). Also the KV cache of every softmax-attention block, under its KV quantizers'
    /// names <c>&lt;attention&gt;.k_bmm_quantizer</c> (keys after norm and RoPE) and <c>&lt;attention&gt;.v_bmm_quantizer</c>
    /// (values as projected), as [tokens, KV heads, head dim] per sequence.
    /// </summary>
    void ObserveInput(string inputQuantizerName, Tensor input);

    /// <summary>
    /// The input of one Linear with where it goes: its input quantizer (as <see cref="ObserveInput"/> names it), the
    /// weight unit it multiplies (the Linear's module name, or <c>&lt;experts&gt;.&lt;e&gt;.gate_up_proj</c> /
    /// <c>down_proj</c> for expert e of fused experts, whose rows are then only the tokens routed to e, or every token
    /// with all-experts calibration) and the expert index for routed experts. Every Linear input arrives here; observers
    /// that need only the quantizer name keep the default, which forwards to <see cref="ObserveInput"/>.
    /// </summary>
    void ObserveLinearInput(LinearSite site, Tensor input) => ObserveInput(site.InputQuantizer, input);

    /// <summary>The top-k experts of every token of one batch: <paramref name="expertIndices"/> is int64 [tokens, k].</summary>
    void ObserveRouting(string expertsContainer, Tensor expertIndices);
}
