namespace ModelOptPS.Engine.Numerics;

/// <summary>Conditions a caller should surface (as PowerShell warnings, report columns) after an FP8 quantization.</summary>
[Flags]
public enum Fp8Flags
{
    None = 0,

    /// <summary>
    /// Every element is zero. With amax 0 ModelOpt would divide by a zero scale and write NaN; ModelOptPS writes codes 0
    /// and the scale of amax 1, <c>fl32(1/448)</c>.
    /// </summary>
    ZeroTensor = 1,

    /// <summary>
    /// A given <see cref="Fp8Options.Amax"/> is below this tensor's own max |w|: its largest weights round to ±448
    /// instead of their own value. (Past 464 they would be NaN codes, which are refused.)
    /// </summary>
    AmaxBelowTensor = 2,
}

/// <summary>What FP8-quantizing one tensor produced besides the E4M3 bytes.</summary>
/// <param name="TensorName">The tensor, as named in messages.</param>
/// <param name="WeightScale">The fp32 <c>weight_scale</c> to store (a 0-d F32 tensor in the checkpoint).</param>
/// <param name="Amax">The amax the scale was derived from: the given one, or this tensor's own (0 for a zero tensor).</param>
/// <param name="TensorAmax">max |w| of this tensor (exact).</param>
/// <param name="Flags">What needs attention.</param>
/// <param name="Warnings">Human-readable sentences, one per flag raised; empty when nothing needs attention.</param>
public sealed record Fp8Result(string TensorName, float WeightScale, float Amax, float TensorAmax, Fp8Flags Flags, IReadOnlyList<string> Warnings);
