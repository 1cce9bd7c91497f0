using System.Buffers.Binary;
using System.Text;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Fixtures;

/// <summary>
/// The byte stream of one generated tensor. Seeded from (seed, tensor name) with SplitMix64, so values do not
/// depend on the order tensors are written in. Random fill approximates N(0, 0.02) by a sum of four uniforms.
/// </summary>
internal sealed class TensorValues
{
    private readonly FixtureTensor _tensor;
    private ulong _state;

    public TensorValues(FixtureTensor tensor, int seed)
    {
        _tensor = tensor;
        _state = Fnv1a(tensor.Name) ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL);
    }

    /// <summary>Fills <paramref name="destination"/> (a whole number of elements) with the next values.</summary>
    public void Next(Span<byte> destination)
    {
        int size = DTypes.SizeOf(_tensor.DType);
        for (int offset = 0; offset + size <= destination.Length; offset += size)
        {
            float value = _tensor.Fill switch
            {
                Fill.Ones => 1f,
                Fill.Zeros => 0f,
                _ => NextNormal() * 0.02f,
            };
            Encode(value, destination.Slice(offset, size));
        }
    }

    private void Encode(float value, Span<byte> target)
    {
        switch (_tensor.DType)
        {
            case DType.BF16:
                // Round to nearest even, as torch does when it casts fp32 to bf16.
                uint bits = BitConverter.SingleToUInt32Bits(value);
                bits += 0x7FFF + ((bits >> 16) & 1);
                BinaryPrimitives.WriteUInt16LittleEndian(target, (ushort)(bits >> 16));
                break;
            case DType.F16:
                BinaryPrimitives.WriteHalfLittleEndian(target, (Half)value);
                break;
            case DType.F32:
                BinaryPrimitives.WriteSingleLittleEndian(target, value);
                break;
            default:
                throw new NotSupportedException($"Fixture tensors are BF16, F16 or F32, not {_tensor.DType}.");
        }
    }

    private float NextNormal()
    {
        // Irwin-Hall: the sum of four U(0,1) has mean 2 and variance 1/3.
        double sum = NextUniform() + NextUniform() + NextUniform() + NextUniform();
        return (float)((sum - 2.0) * Math.Sqrt(3.0));
    }

    private double NextUniform() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    private ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv1a(string text)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= 0x100000001B3UL;
        }
        return hash;
    }
}
