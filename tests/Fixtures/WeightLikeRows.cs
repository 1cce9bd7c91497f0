using System.Runtime.InteropServices;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Fixtures;

/// <summary>
/// A fast, seeded generator of weight-like checkpoint values for <see cref="CheckpointRecipe.Write(string, RowFill, long, int)"/>:
/// random tensors get, per row of their last dimension, normal values of standard deviation 0.02·e^U(-1,1) (a spread of
/// row scales, as trained weights have) with 0.05% outliers scaled by U(10, 50) — the distribution of
/// the <c>nvfp4</c> benchmark's weight; norm weights keep the recipe's fill (ones, or zeros for the offset norms, both an effective
/// scale of 1). Each row has its own stream from (seed, tensor name, row), so the bytes depend neither on the thread
/// count nor on the chunking; rows are filled in parallel on all cores.
/// </summary>
public static class WeightLikeRows
{
    private const double OutlierProbability = 0.0005;

    /// <summary>
    /// The generator for <paramref name="seed"/>. Tensors <paramref name="evenRows"/> picks get the same scale on every
    /// row (0.02): a router's rows should, as a trained router is load-balanced and a spread of row scales would send
    /// nearly every token to the few experts with the largest rows.
    /// </summary>
    public static RowFill Seeded(int seed, Predicate<FixtureTensor>? evenRows = null) => (tensor, firstRow, destination) =>
    {
        int size = DTypes.SizeOf(tensor.DType);
        if (tensor.DType is not (DType.BF16 or DType.F32))
            throw new NotSupportedException($"Generated tensors are BF16 or F32, not {tensor.DType}.");
        if (tensor.Fill != Fill.Random)
        {
            float constant = tensor.Fill == Fill.Ones ? 1f : 0f;
            if (tensor.DType == DType.BF16) MemoryMarshal.Cast<byte, ushort>(destination).Fill(Bf16(constant));
            else MemoryMarshal.Cast<byte, float>(destination).Fill(constant);
            return;
        }

        int columns = (int)(tensor.Shape.Length == 0 ? 1 : tensor.Shape[^1]);
        int rows = destination.Length / (columns * size);
        ulong tensorState = SplitMix64.ForTensor(tensor.Name, seed).State;
        bool spread = evenRows?.Invoke(tensor) != true;
        // A Span cannot enter the parallel lambda: pin the chunk for the duration of the loop.
        unsafe
        {
            fixed (byte* start = destination)
            {
                nint address = (nint)start;
                Parallel.For(0, rows, r =>
                {
                    var random = new SplitMix64(tensorState ^ ((ulong)(firstRow + r) * 0xD1B54A32D192ED03UL));
                    var row = new Span<byte>((byte*)address + (long)r * columns * size, columns * size);
                    if (tensor.DType == DType.BF16) FillRow(ref random, spread, MemoryMarshal.Cast<byte, ushort>(row), null);
                    else FillRow(ref random, spread, default, MemoryMarshal.Cast<byte, float>(row));
                });
            }
        }
    };

    /// <summary>One row into <paramref name="bf16"/> or <paramref name="f32"/> (the other is empty).</summary>
    private static void FillRow(ref SplitMix64 random, bool spread, Span<ushort> bf16, Span<float> f32)
    {
        int columns = Math.Max(bf16.Length, f32.Length);
        double spreadDraw = random.NextUniform();
        float std = (float)(0.02 * (spread ? Math.Exp(spreadDraw * 2 - 1) : 1));
        // Box-Muller, both outputs of each pair, from two 24-bit uniforms of one draw (1 - u is in (0, 1], exact in float).
        for (int c = 0; c < columns; c += 2)
        {
            ulong bits = random.NextUInt64();
            float u1 = (bits >> 40) * (1f / (1 << 24)), u2 = ((bits >> 16) & 0xFFFFFF) * (1f / (1 << 24));
            float radius = std * MathF.Sqrt(-2f * MathF.Log(1f - u1));
            (float sin, float cos) = MathF.SinCos(2f * MathF.PI * u2);
            Store(bf16, f32, c, radius * cos);
            if (c + 1 < columns) Store(bf16, f32, c + 1, radius * sin);
        }

        // Outliers: geometric gaps between them, so the cost is one draw per outlier, not per value.
        double logKeep = Math.Log(1 - OutlierProbability);
        for (long c = Gap(ref random, logKeep); c < columns; c += 1 + Gap(ref random, logKeep))
        {
            float factor = (float)(10 + 40 * random.NextUniform());
            int i = (int)c;
            if (bf16.IsEmpty) f32[i] *= factor;
            else bf16[i] = Bf16(BitConverter.Int32BitsToSingle(bf16[i] << 16) * factor);
        }
    }

    private static long Gap(ref SplitMix64 random, double logKeep) =>
        (long)Math.Min(Math.Floor(Math.Log(1 - random.NextUniform()) / logKeep), int.MaxValue);

    private static void Store(Span<ushort> bf16, Span<float> f32, int index, float value)
    {
        if (bf16.IsEmpty) f32[index] = value;
        else bf16[index] = Bf16(value);
    }

    /// <summary>Round to nearest even, as torch casts fp32 to bf16.</summary>
    private static ushort Bf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
}
