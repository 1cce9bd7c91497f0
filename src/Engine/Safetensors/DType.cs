namespace ModelOptPS.Engine.Safetensors;

/// <summary>Element types a safetensors header may name (the strings are the header's own spelling).</summary>
public enum DType
{
    BF16,
    F16,
    F32,
    F64,
    F8_E4M3,
    F8_E5M2,
    U8,
    I8,
    I16,
    I32,
    I64,
    BOOL,
}

/// <summary>Size and name facts about <see cref="DType"/>, kept in one table instead of switch chains.</summary>
public static class DTypes
{
    private static readonly Dictionary<string, DType> ByName =
        Enum.GetValues<DType>().ToDictionary(d => d.ToString(), d => d, StringComparer.Ordinal);

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.F8_E4M3 or DType.F8_E5M2 or DType.U8 or DType.I8 or DType.BOOL => 1,
        DType.BF16 or DType.F16 or DType.I16 => 2,
        DType.F32 or DType.I32 => 4,
        DType.F64 or DType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>True for the floating-point types a weight can be stored in before quantization.</summary>
    public static bool IsFloatingSource(DType dtype) => dtype is DType.BF16 or DType.F16 or DType.F32;

    public static bool TryParse(string name, out DType dtype) => ByName.TryGetValue(name, out dtype);

    public static string Name(DType dtype) => dtype.ToString();
}
