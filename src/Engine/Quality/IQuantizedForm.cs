using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// What the quantized model computes with: each Linear weight the runner materialises replaced by its dequantized form
/// (NVFP4 or FP8), and for each quantized activation (a Linear's input, an attention block's cached keys and values)
/// how an engine quantizes it.
/// </summary>
internal interface IQuantizedForm
{
    /// <summary>Where the quantized weights come from (for the report).</summary>
    string Description { get; }

    /// <summary>The formats, as <see cref="QuantScheme.Describe"/> names them.</summary>
    string Scheme { get; }

    /// <summary>The weight to compute with: <paramref name="weight"/> itself, or a new tensor of the same shape.</summary>
    /// <param name="weightName">The runner's name: a Linear module, or a fused experts 3-D parameter.</param>
    Tensor Weight(string weightName, Tensor weight);

    /// <summary>
    /// How the activations at <paramref name="quantizerName"/> (<c>&lt;m&gt;.input_quantizer</c>, a fused experts'
    /// shared input quantizer, <c>&lt;attention&gt;.k_bmm_quantizer</c> / <c>v_bmm_quantizer</c>) are quantized, or null
    /// when they stay unquantized.
    /// </summary>
    ActivationQuantizer? Activation(string quantizerName);
}
