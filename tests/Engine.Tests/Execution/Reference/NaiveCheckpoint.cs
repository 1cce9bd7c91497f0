using System.Buffers.Binary;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Execution.Reference;

/// <summary>A checkpoint's tensors as doubles (bf16/f16/f32 decoded bit by bit here, not through torch).</summary>
internal sealed class NaiveCheckpoint(CheckpointReader reader)
{
    public bool Has(string name) => reader.Tensors.ContainsKey(name);

    public long[] Shape(string name) => reader.GetTensor(name).Info.Shape;

    public double[] Flat(string name)
    {
        var t = reader.GetTensor(name);
        ReadOnlySpan<byte> bytes = t.File.ToArray(t.Info);
        int size = DTypes.SizeOf(t.Info.DType);
        var values = new double[bytes.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            var b = bytes.Slice(i * size, size);
            values[i] = t.Info.DType switch
            {
                DType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
                DType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
                DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                _ => throw new NotSupportedException(t.Info.DType.ToString()),
            };
        }
        return values;
    }

    /// <summary>A 2-D tensor as rows.</summary>
    public double[][] Matrix(string name)
    {
        long[] shape = Shape(name);
        return Rows(Flat(name), (int)shape[0], (int)shape[^1]);
    }

    /// <summary>A 3-D tensor [E, R, C] as E matrices.</summary>
    public double[][][] Stack(string name)
    {
        long[] shape = Shape(name);
        double[] flat = Flat(name);
        int n = (int)(shape[1] * shape[2]);
        return Enumerable.Range(0, (int)shape[0]).Select(e => Rows(flat[(e * n)..((e + 1) * n)], (int)shape[1], (int)shape[2])).ToArray();
    }

    public static double[][] Rows(double[] flat, int rows, int columns) =>
        Enumerable.Range(0, rows).Select(r => flat[(r * columns)..((r + 1) * columns)]).ToArray();
}
