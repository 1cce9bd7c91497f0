namespace ModelOptPS.Engine.Numerics;

/// <summary>Conditions a caller should surface (as PowerShell warnings, report columns) after quantizing a tensor.</summary>
[Flags]
public enum Nvfp4Flags
{
    None = 0,

    /// <summary>
    /// Every element is zero. With amax 0 (no group amax, or a group of zeros) ModelOpt would write NaN block scales;
    /// ModelOptPS writes block scales 1.0 (0x38), codes 0 and <c>weight_scale_2 = fl32(1/2688)</c> instead.
    /// </summary>
    ZeroTensor = 1,

    /// <summary>
    /// A given <see cref="Nvfp4Options.GlobalAmax"/> is below this tensor's own max |w|: its largest blocks saturate
    /// (scale clamped to 448, codes to ±6). Usually the group amax was not taken over every member.
    /// </summary>
    AmaxExceedsGlobal = 2,
}

/// <summary>What quantizing one tensor produced besides the packed bytes and block scales.</summary>
public sealed class Nvfp4Result
{
    internal Nvfp4Result(string tensorName, float weightScale2, float amax, float tensorAmax, Nvfp4Flags flags, IReadOnlyList<string> warnings)
    {
        TensorName = tensorName;
        WeightScale2 = weightScale2;
        Amax = amax;
        TensorAmax = tensorAmax;
        Flags = flags;
        Warnings = warnings;
    }

    public string TensorName { get; }

    /// <summary>The fp32 <c>weight_scale_2</c> to store (a 0-d F32 tensor in the checkpoint).</summary>
    public float WeightScale2 { get; }

    /// <summary>The amax the scale was derived from: the given group amax, or this tensor's own.</summary>
    public float Amax { get; }

    /// <summary>max |w| of this tensor (exact).</summary>
    public float TensorAmax { get; }

    public Nvfp4Flags Flags { get; }

    /// <summary>Human-readable sentences, one per flag raised; empty when nothing needs attention.</summary>
    public IReadOnlyList<string> Warnings { get; }
}
