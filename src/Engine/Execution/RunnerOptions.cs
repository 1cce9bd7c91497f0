using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>Replaces a Linear's weight as it is materialised (issue 7's fake quantization); see <see cref="RunnerOptions.WeightTransform"/>.</summary>
public delegate Tensor WeightTransform(string weightName, Tensor weight);

/// <summary>Replaces a Linear's input before the matmul (fake-quantized activations); see <see cref="RunnerOptions.ActivationTransform"/>.</summary>
public delegate Tensor ActivationTransform(string inputQuantizerName, Tensor input);

/// <summary>The dtype the model runs in; weights are converted to it as they are materialised.</summary>
public enum ComputeDType
{
    Float32,
    BFloat16,
}

/// <summary>How <see cref="ModelRunner"/> runs a model.</summary>
public sealed record RunnerOptions
{
    /// <summary><c>cpu</c> (default) or <c>cuda</c> / <c>cuda:N</c> where the installed libtorch has CUDA.</summary>
    public string Device { get; init; } = "cpu";

    public ComputeDType ComputeDType { get; init; } = ComputeDType.Float32;

    /// <summary>
    /// Every token also passes through every expert, for observation only; only the routed outputs feed the next layer
    /// (llm-compressor's <c>moe_calibrate_all_experts</c>), so no expert goes unobserved.
    /// </summary>
    public bool AllExperts { get; init; }

    /// <summary>
    /// Called once per weight as a layer is materialised, with the weight in the compute dtype on the device; returns
    /// the weight to use (the same tensor, or a new one of the same shape). The name is the Linear's module
    /// (<c>model.layers.0.self_attn.q_proj</c>, <c>…experts.3.gate_proj</c>) or, for fused experts, the 3-D
    /// parameter (<c>…mlp.experts.gate_up_proj</c> [E, 2I, H], <c>…mlp.experts.down_proj</c> [E, H, I]).
    /// Routers and lm_head are Linears too; norms, embeddings and convs are not passed.
    /// </summary>
    public WeightTransform? WeightTransform { get; init; }

    /// <summary>
    /// Called with every Linear input, and every attention block's keys and values as cached, after the observer saw
    /// them, under the same names as <see cref="IActivationObserver.ObserveInput"/>; returns the tensor the Linear
    /// multiplies (the attention reads). Tensors it creates are freed by the runner.
    /// </summary>
    public ActivationTransform? ActivationTransform { get; init; }

    /// <summary>libtorch intra-op threads (process-wide); null keeps the current setting.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Tokens per feed-forward batch: the MLP/MoE of a layer runs on the tokens of all sequences together, this many at
    /// a time, so each expert sees one large gathered matmul while temporary memory stays bounded.
    /// </summary>
    public int TokensPerChunk { get; init; } = 4096;
}
