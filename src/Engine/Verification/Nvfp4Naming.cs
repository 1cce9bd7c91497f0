using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The tensor names and scale conventions of one NVFP4 layout (checkpoint-contract.md). Both store the same packed
/// bytes and block scales; compressed-tensors names them differently and stores the reciprocal global scales.
/// </summary>
internal sealed class Nvfp4Naming
{
    /// <summary>How <see cref="ModuleCheck.Found"/> starts for a module holding NVFP4 tensors.</summary>
    public const string FoundPrefix = "NVFP4";

    public static Nvfp4Naming ModelOpt { get; } =
        new("weight", "weight_scale", "weight_scale_2", "input_scale", [], reciprocal: false, "exclude_modules");

    public static Nvfp4Naming CompressedTensors { get; } =
        new("weight_packed", "weight_scale", "weight_global_scale", "input_global_scale", [1], reciprocal: true, "ignore");

    /// <summary>Every name either layout gives a quantization tensor, to recognise a quantized module in any layout.</summary>
    private static readonly HashSet<string> AnyScaleName =
        ["weight_scale", "weight_scale_2", "input_scale", "weight_packed", "weight_global_scale", "input_global_scale"];

    private Nvfp4Naming(string packed, string blockScale, string globalScale, string inputScale, long[] scalarShape,
        bool reciprocal, string exclusionListName)
    {
        Packed = packed;
        BlockScale = blockScale;
        GlobalScale = globalScale;
        InputScale = inputScale;
        ScalarShape = scalarShape;
        Reciprocal = reciprocal;
        ExclusionListName = exclusionListName;
    }

    public static Nvfp4Naming For(QuantFormat format) => format == QuantFormat.CompressedTensors ? CompressedTensors : ModelOpt;

    /// <summary>U8 [out, in/2], two E2M1 codes a byte.</summary>
    public string Packed { get; }

    /// <summary>F8_E4M3 [out, in/16].</summary>
    public string BlockScale { get; }

    /// <summary><c>weight_scale_2</c> (ModelOpt) or its reciprocal <c>weight_global_scale</c>.</summary>
    public string GlobalScale { get; }

    /// <summary><c>input_scale</c> (ModelOpt) or its reciprocal <c>input_global_scale</c>.</summary>
    public string InputScale { get; }

    /// <summary>Shape of the F32 global scales: 0-d for ModelOpt, [1] for compressed-tensors.</summary>
    public long[] ScalarShape { get; }

    /// <summary>True when the global scales are stored as 2688/amax instead of amax/2688.</summary>
    public bool Reciprocal { get; }

    /// <summary>What the format calls its exclusion list (for messages).</summary>
    public string ExclusionListName { get; }

    /// <summary>The names a quantized Linear may carry besides <c>bias</c>.</summary>
    public IEnumerable<string> QuantTensors => [Packed, BlockScale, GlobalScale, InputScale];

    /// <summary>True when a module carries NVFP4 tensors in either layout (a packed U8 weight or any scale).</summary>
    public static bool LooksQuantized(IReadOnlyDictionary<string, TensorInfo> parameters) =>
        parameters.Keys.Any(AnyScaleName.Contains)
        || (parameters.TryGetValue("weight", out var w) && w.DType == DType.U8);

    /// <summary>A stored global scale in ModelOpt's convention (amax/2688), the multiplier of the block scales.</summary>
    public double WeightScale2(float stored) => Reciprocal ? 1.0 / stored : stored;
}
