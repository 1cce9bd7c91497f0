namespace ModelOptPS.Engine.Numerics;

/// <summary>How <see cref="Nvfp4.Quantize"/> forms the per-tensor scale.</summary>
public sealed record Nvfp4Options
{
    /// <summary>The defaults: amax from the tensor itself, CUDA operation order.</summary>
    public static Nvfp4Options Default { get; } = new();

    /// <summary>
    /// The amax to derive <c>weight_scale_2</c> from. Null: max |w| of the tensor being quantized. Set it to the
    /// maximum over a fused group (q/k/v, gate/up: see checkpoint-contract.md) so that the group shares one
    /// <c>weight_scale_2</c>; compute each member's amax with <see cref="Amax.ComputeFinite"/>.
    /// </summary>
    public float? GlobalAmax { get; init; }

    /// <summary>Rounding order of <c>amax / 2688</c> (CUDA by default, as real ModelOpt checkpoints).</summary>
    public GlobalScaleOrder Order { get; init; } = GlobalScaleOrder.Cuda;

    /// <summary>Instruction set to use; tests force each one. <see cref="KernelPath.Auto"/> in production.</summary>
    internal KernelPath Path { get; init; } = KernelPath.Auto;
}
