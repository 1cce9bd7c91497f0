using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// What the quantized model computes with: each Linear weight the runner materialises replaced by its
/// NVFP4-dequantized form, and for each quantized input the global scale its activations are quantized against.
/// </summary>
internal interface IQuantizedForm
{
    /// <summary>Where the quantized weights come from (for the report).</summary>
    string Description { get; }

    /// <summary>W4A4 or W4A16.</summary>
    string Scheme { get; }

    /// <summary>The weight to compute with: <paramref name="weight"/> itself, or a new tensor of the same shape.</summary>
    /// <param name="weightName">The runner's name: a Linear module, or a fused experts 3-D parameter.</param>
    Tensor Weight(string weightName, Tensor weight);

    /// <summary>The global scale of an input quantizer's NVFP4 activations, or null when the input stays unquantized.</summary>
    float? InputScale(string inputQuantizerName);
}
