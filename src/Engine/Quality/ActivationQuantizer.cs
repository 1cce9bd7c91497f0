using ModelOptPS.Engine.Numerics;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// How an inference engine quantizes the activations at one quantizer (a Linear's input, an attention block's keys or
/// values as cached), emulated on tensors: quantized, then dequantized back to the compute dtype.
/// </summary>
internal abstract record ActivationQuantizer
{
    public abstract Tensor FakeQuantize(Tensor x);
}

/// <summary>NVFP4 W4A4 inputs: 16-element blocks per token against the calibrated global scale <c>input_scale</c>.</summary>
internal sealed record Nvfp4Activations(float GlobalScale) : ActivationQuantizer
{
    public override Tensor FakeQuantize(Tensor x) => Nvfp4Emulation.FakeQuantize(x, GlobalScale);
}

/// <summary>
/// Static FP8 per tensor, as vLLM computes it: <c>e4m3(clamp(x / scale, ±448)) × scale</c>, with <c>scale</c> an FP8
/// Linear's <c>input_scale</c> or a KV cache's <c>k_scale</c>/<c>v_scale</c> (1.0 where the checkpoint writes none).
/// </summary>
internal sealed record Fp8Activations(float Scale) : ActivationQuantizer
{
    public override Tensor FakeQuantize(Tensor x)
    {
        var values = FloatTensors.Values(x);
        Fp8.FakeQuantizeInPlace(values, Scale);
        return FloatTensors.ToTensor(values, x.shape, x);
    }
}
