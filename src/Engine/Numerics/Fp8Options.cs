namespace ModelOptPS.Engine.Numerics;

/// <summary>How <see cref="Fp8.Quantize"/> forms the per-tensor scale and divides by it.</summary>
public sealed record Fp8Options
{
    /// <summary>The defaults: amax from the tensor itself, CUDA operation order.</summary>
    public static Fp8Options Default { get; } = new();

    /// <summary>
    /// The amax to derive <c>weight_scale</c> from. Null: max |w| of the tensor being quantized. Set it when one
    /// ModelOpt weight quantizer covers several stored tensors (the gate and up halves of a fused expert), computing
    /// each part's amax with <see cref="Amax.ComputeFinite"/>. FP8 groups (q/k/v, gate/up Linears) are not unified:
    /// each Linear keeps its own amax (ModelOpt's <c>_fuse_shared_input_modules</c> skips FP8).
    /// </summary>
    public float? Amax { get; init; }

    /// <summary>
    /// How the weight is divided by the scale (the scale itself is device independent): CUDA casts the fp32 scale to
    /// the weight's dtype first, the CPU divides by it as fp32. They differ only for BF16/F16 weights.
    /// </summary>
    public GlobalScaleOrder Order { get; init; } = GlobalScaleOrder.Cuda;

    /// <summary>Instruction set to use; tests force each one. <see cref="KernelPath.Auto"/> in production.</summary>
    internal KernelPath Path { get; init; } = KernelPath.Auto;
}
