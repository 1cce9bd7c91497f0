using System.Buffers.Binary;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Fixtures;

/// <summary>
/// The byte stream of one generated tensor. Seeded from (seed, tensor name) with SplitMix64, so values do not
/// depend on the order tensors are written in. Random fill approximates N(0, 0.02) by a sum of four uniforms.
/// </summary>
internal sealed class TensorValues
{
    private readonly FixtureTensor _tensor;
    private SplitMix64 _random;

    public TensorValues(FixtureTensor tensor, int seed)
    {
        _tensor = tensor;
        _random = SplitMix64.ForTensor(tensor.Name, seed);
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

    private double NextUniform() => _random.NextUniform();
}
