using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Where an exported tensor's values come from in the source: a whole tensor, or one contiguous part of a fused
/// expert tensor (expert e's gate rows, up rows or down matrix). Read through the source's memory map.
/// </summary>
internal sealed record SourceSlice(string Name, TensorRef Tensor, long Offset, long[] Shape, string Origin)
{
    public DType DType => Tensor.Info.DType;

    public long ByteLength => TensorInfo.ElementsOf(Shape) * DTypes.SizeOf(DType);

    public MappedBytes Read(long offset, int length) => Tensor.File.Read(Tensor.Info, Offset + offset, length);

    /// <summary>max |w| over the slice (floating dtypes), read in chunks.</summary>
    public float Amax()
    {
        const int chunk = 1 << 24;
        float amax = 0;
        for (long offset = 0; offset < ByteLength; offset += chunk)
        {
            using var bytes = Read(offset, (int)Math.Min(chunk, ByteLength - offset));
            amax = Math.Max(amax, Numerics.Amax.Compute(bytes.Span, DType).Amax);
        }
        return amax;
    }

    /// <summary>The offset of the first byte that differs from <paramref name="other"/>, or -1 when all are equal.</summary>
    public long FirstDifference(TensorRef other)
    {
        const int chunk = 1 << 24;
        for (long offset = 0; offset < ByteLength; offset += chunk)
        {
            int length = (int)Math.Min(chunk, ByteLength - offset);
            using var mine = Read(offset, length);
            using var theirs = other.File.Read(other.Info, offset, length);
            int common = mine.Span.CommonPrefixLength(theirs.Span);
            if (common < length) return offset + common;
        }
        return -1;
    }
}
