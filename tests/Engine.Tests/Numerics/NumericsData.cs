using System.Runtime.InteropServices;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>Test data for the numerics tests: encoders to raw source bytes, and weight-like and adversarial tensors.</summary>
internal static class NumericsData
{
    public static readonly DType[] SourceTypes = [DType.BF16, DType.F16, DType.F32];

    /// <summary>Every (path, dtype) pair this machine can run.</summary>
    /// <remarks>Paths travel as names: <see cref="KernelPath"/> is internal and test methods are public.</remarks>
    public static TheoryData<string, DType> PathsAndTypes()
    {
        var data = new TheoryData<string, DType>();
        foreach (KernelPath path in KernelPaths.Available())
        {
            foreach (DType dtype in SourceTypes)
            {
                data.Add(path.ToString(), dtype);
            }
        }

        return data;
    }

    public static TheoryData<string> Paths()
    {
        var data = new TheoryData<string>();
        foreach (KernelPath path in KernelPaths.Available())
        {
            data.Add(path.ToString());
        }

        return data;
    }

    public static KernelPath Path(string name) => Enum.Parse<KernelPath>(name);

    public static ushort ToBf16Bits(float value)
    {
        // Round to nearest even (NaN kept a NaN).
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }

    /// <summary><paramref name="value"/> rounded to the nearest <paramref name="dtype"/> value (even on ties), as fp32.</summary>
    public static float RoundTo(float value, DType dtype) => dtype switch
    {
        DType.BF16 => BitConverter.UInt32BitsToSingle((uint)ToBf16Bits(value) << 16),
        DType.F16 => (float)(Half)value,
        _ => value,
    };

    /// <summary>The next <paramref name="dtype"/> value above (<paramref name="direction"/> 1) or below (-1) a value ≥ 0.</summary>
    public static float Step(float value, DType dtype, int direction)
    {
        if (value == 0f && direction < 0)
        {
            return 0f;
        }

        return dtype switch
        {
            DType.BF16 => BitConverter.UInt32BitsToSingle((uint)(ToBf16Bits(value) + direction) << 16),
            DType.F16 => (float)BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits((Half)value) + direction)),
            _ => direction > 0 ? MathF.BitIncrement(value) : MathF.BitDecrement(value),
        };
    }

    public static byte[] Encode(ReadOnlySpan<float> values, DType dtype)
    {
        var bytes = new byte[values.Length * DTypes.SizeOf(dtype)];
        switch (dtype)
        {
            case DType.BF16:
                Span<ushort> b = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++)
                {
                    b[i] = ToBf16Bits(values[i]);
                }

                break;
            case DType.F16:
                Span<Half> h = MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++)
                {
                    h[i] = (Half)values[i];
                }

                break;
            case DType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(bytes);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype));
        }

        return bytes;
    }

    public static byte[] Bf16FromHex(string hex) =>
        MemoryMarshal.AsBytes(hex.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => Convert.ToUInt16(s, 16)).ToArray().AsSpan()).ToArray();

    public static byte[] Hex(string hex) =>
        hex.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => Convert.ToByte(s, 16)).ToArray();

    public static string ToHex(ReadOnlySpan<byte> bytes) => string.Join(' ', bytes.ToArray().Select(b => b.ToString("X2")));

    /// <summary>Weight-like values: normal with a per-row spread, a few large outliers, some exact zeros.</summary>
    public static float[] WeightLike(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            float rowStd = 0.02f * MathF.Exp((float)(random.NextDouble() * 2 - 1));
            for (int c = 0; c < cols; c++)
            {
                double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
                double normal = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                float w = (float)(normal * rowStd);
                int roll = random.Next(1000);
                if (roll == 0)
                {
                    w *= 40f; // outlier
                }
                else if (roll == 1)
                {
                    w = 0f;
                }

                values[r * cols + c] = w;
            }
        }

        return values;
    }

    /// <summary>
    /// Adversarial blocks for a power-of-two <paramref name="weightScale2"/>, so that block scales and divisors are
    /// exact and the tie values below are exactly representable. Each 16-element block is one of a set of kinds:
    /// E2M1 ties (every bound ×d, ±1 ulp), E4M3 ties in the scale, subnormal FP8 scales, blocks that clamp at 2^-9 or
    /// 448, zeros and negative zeros, huge dynamic range within a block, and plain random blocks.
    /// </summary>
    public static float[] Adversarial(int rows, int cols, float weightScale2, DType dtype, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * cols];
        float[] e2m1 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];
        float[] bounds = [0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f];
        float maxFinite = dtype switch { DType.F16 => 65504f, _ => 3e38f };
        for (int b = 0; b < values.Length / 16; b++)
        {
            Span<float> block = values.AsSpan(b * 16, 16);
            int kind = random.Next(10);
            switch (kind)
            {
                case 0:
                case 1:
                {
                    // E2M1 ties: pick the block scale code, put 6·d in to fix it, fill with ±bound·d and neighbours.
                    float d = E4M3.ToFloat((byte)random.Next(1, 0x7F)) * weightScale2;
                    block[0] = 6f * d * (random.Next(2) == 0 ? 1 : -1);
                    for (int i = 1; i < 16; i++)
                    {
                        float v = random.Next(3) == 0 ? e2m1[random.Next(8)] : bounds[random.Next(7)];
                        float w = v * d;
                        int nudge = random.Next(5);
                        if (nudge == 1)
                        {
                            w = MathF.BitIncrement(w);
                        }
                        else if (nudge == 2)
                        {
                            w = MathF.BitDecrement(w);
                        }

                        block[i] = random.Next(2) == 0 ? -w : w;
                    }

                    break;
                }

                case 2:
                {
                    // Ties in the E4M3 cast of the scale: s exactly halfway between two neighbouring E4M3 values.
                    int code = random.Next(0, 0x7E);
                    float mid = (E4M3.ToFloat((byte)code) + E4M3.ToFloat((byte)(code + 1))) / 2f;
                    block[0] = mid * 6f * weightScale2;
                    for (int i = 1; i < 16; i++)
                    {
                        block[i] = (float)(random.NextDouble() * 2 - 1) * block[0];
                    }

                    break;
                }

                case 3:
                {
                    // Subnormal FP8 scales: s in [2^-9, 2^-6).
                    float s = (float)(random.NextDouble() * (1.0 / 64 - 1.0 / 512) + 1.0 / 512);
                    float amax = s * 6f * weightScale2;
                    for (int i = 0; i < 16; i++)
                    {
                        block[i] = (float)(random.NextDouble() * 2 - 1) * amax;
                    }

                    break;
                }

                case 4:
                {
                    // Clamps at 2^-9: a tiny but non-zero block.
                    float amax = (float)(random.NextDouble() * 6.0 * weightScale2 / 512.0);
                    for (int i = 0; i < 16; i++)
                    {
                        block[i] = random.Next(3) == 0 ? 0f : (float)(random.NextDouble() * 2 - 1) * amax;
                    }

                    break;
                }

                case 5:
                {
                    // Clamps at 448: the block is larger than the global scale allows (saturating codes).
                    float amax = MathF.Min(maxFinite, 6f * 448f * weightScale2 * (1f + (float)random.NextDouble() * 8f));
                    for (int i = 0; i < 16; i++)
                    {
                        block[i] = (float)(random.NextDouble() * 2 - 1) * amax;
                    }

                    block[random.Next(16)] = amax;
                    break;
                }

                case 6:
                {
                    // Zeros and negative zeros.
                    for (int i = 0; i < 16; i++)
                    {
                        block[i] = random.Next(2) == 0 ? 0f : -0f;
                    }

                    break;
                }

                case 7:
                {
                    // Huge range within a block: one big value, the rest spread over many binades down to subnormals.
                    block[0] = MathF.Min(maxFinite, 6f * 448f * weightScale2);
                    for (int i = 1; i < 16; i++)
                    {
                        float w = block[0] * MathF.Pow(2f, -random.Next(0, 60)) * (float)random.NextDouble();
                        block[i] = random.Next(2) == 0 ? -w : w;
                    }

                    break;
                }

                default:
                {
                    float amax = 6f * 448f * weightScale2 * (float)random.NextDouble();
                    for (int i = 0; i < 16; i++)
                    {
                        block[i] = (float)(random.NextDouble() * 2 - 1) * amax;
                    }

                    break;
                }
            }
        }

        return values;
    }
}
