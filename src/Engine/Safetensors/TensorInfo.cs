namespace ModelOptPS.Engine.Safetensors;

/// <summary>One tensor entry of a safetensors header: where its bytes lie in the file's data section.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;

    public long ElementCount => ElementsOf(Shape);

    public int Rank => Shape.Length;

    public static long ElementsOf(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    public string ShapeText => FormatShape(Shape);

    /// <summary>A shape as it is shown everywhere: <c>[out, in]</c>.</summary>
    public static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
