using System.Runtime.Intrinsics;
using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>The E2M1/E4M3 codecs and the widening helpers: reference definitions, and the SIMD forms against them.</summary>
public class CodecTests
{
    [Fact]
    public void E2M1_ThresholdTable()
    {
        // spec table: ≤0.25→0, (0.25,0.75)→0.5, [0.75,1.25]→1, (1.25,1.75)→1.5, [1.75,2.5]→2, (2.5,3.5)→3, [3.5,5]→4, >5→6
        (float X, float Value)[] cases =
        [
            (0f, 0f), (0.25f, 0f), (MathF.BitIncrement(0.25f), 0.5f), (MathF.BitDecrement(0.75f), 0.5f), (0.75f, 1f),
            (1.25f, 1f), (MathF.BitIncrement(1.25f), 1.5f), (MathF.BitDecrement(1.75f), 1.5f), (1.75f, 2f), (2.5f, 2f),
            (MathF.BitIncrement(2.5f), 3f), (MathF.BitDecrement(3.5f), 3f), (3.5f, 4f), (5f, 4f), (MathF.BitIncrement(5f), 6f),
            (6f, 6f), (1e30f, 6f), (float.PositiveInfinity, 6f), (float.Epsilon, 0f),
        ];
        foreach (var (x, value) in cases)
        {
            Assert.Equal(value, E2M1.Decode(E2M1.Encode(x)));
            Assert.Equal(x == 0f ? 0x0 : E2M1.Encode(x) | 0x8, E2M1.Encode(-x)); // -0 is not < 0: no sign bit
        }
    }

    /// <summary>Values that probe every E2M1 decision: each bound and grid point with ±1..3 ulps, plus a sweep of every exponent.</summary>
    private static float[] E2M1Probes()
    {
        var probes = new List<float> { 0f, -0f, float.NaN, -float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon };
        foreach (float point in new[] { 0.25f, 0.5f, 0.75f, 1f, 1.25f, 1.5f, 1.75f, 2f, 2.5f, 3f, 3.5f, 4f, 5f, 6f, 7f, 8f })
        {
            float lo = point, hi = point;
            probes.Add(point);
            for (int k = 0; k < 3; k++)
            {
                lo = MathF.BitDecrement(lo);
                hi = MathF.BitIncrement(hi);
                probes.Add(lo);
                probes.Add(hi);
            }
        }

        // Every exponent, with mantissas that exercise the rounding bits (bit 22, bits 21-0 all set, half, random).
        var random = new Random(7);
        for (uint exponent = 0; exponent < 256; exponent++)
        {
            foreach (uint mantissa in new uint[] { 0, 1, 0x200000, 0x1FFFFF, 0x3FFFFF, 0x400000, 0x600000, 0x7FFFFF, 0x5FFFFF, 0x600001 })
            {
                probes.Add(BitConverter.UInt32BitsToSingle((exponent << 23) | mantissa));
            }

            for (int k = 0; k < 64; k++)
            {
                probes.Add(BitConverter.UInt32BitsToSingle((exponent << 23) | (uint)random.Next(0, 1 << 23)));
            }
        }

        for (int k = 0; k < 200_000; k++)
        {
            probes.Add((float)(random.NextDouble() * 7.0));
        }

        int n = probes.Count;
        for (int i = 0; i < n; i++)
        {
            probes.Add(-probes[i]);
        }

        while (probes.Count % 16 != 0)
        {
            probes.Add(0.75f);
        }

        return probes.ToArray();
    }

    [Fact]
    public void E2M1_Vector512_EqualsReference()
    {
        if (!KernelPaths.Vector512Available)
        {
            return;
        }

        float[] probes = E2M1Probes();
        for (int i = 0; i < probes.Length; i += 16)
        {
            // The 512-bit encoder leaves table bits above bit 15 (packing drops them): compare the code nibble.
            Vector512<uint> codes = Nvfp4Kernel.E2M1Codes(Vector512.Create(probes.AsSpan(i, 16))) & Vector512.Create(0xFFFFu);
            for (int j = 0; j < 16; j++)
            {
                Assert.True(E2M1.Encode(probes[i + j]) == codes[j], $"x = {probes[i + j]:R} (0x{BitConverter.SingleToUInt32Bits(probes[i + j]):X8})");
            }
        }
    }

    [Fact]
    public void E2M1_Vector256_EqualsReference()
    {
        if (!KernelPaths.Vector256Available)
        {
            return;
        }

        float[] probes = E2M1Probes();
        for (int i = 0; i < probes.Length; i += 8)
        {
            Vector256<uint> codes = Nvfp4Kernel.E2M1Codes(Vector256.Create(probes.AsSpan(i, 8)));
            for (int j = 0; j < 8; j++)
            {
                Assert.True(E2M1.Encode(probes[i + j]) == codes[j], $"x = {probes[i + j]:R} (0x{BitConverter.SingleToUInt32Bits(probes[i + j]):X8})");
            }
        }
    }

    [Fact]
    public void E4M3_RoundTripsEveryCode()
    {
        for (int code = 0; code < 256; code++)
        {
            if ((code & 0x7F) == 0x7F)
            {
                continue;
            }

            Assert.Equal(code, E4M3.FromFloat(E4M3.ToFloat((byte)code)));
        }
    }

    [Fact]
    public void E4M3_TiesGoToEven_AndOverflowIsNaN()
    {
        for (int code = 0; code < 0x7E; code++)
        {
            float lo = E4M3.ToFloat((byte)code), hi = E4M3.ToFloat((byte)(code + 1));
            float mid = (lo + hi) / 2f; // exact: E4M3 values have 4 significant bits
            int even = (code & 1) == 0 ? code : code + 1;
            Assert.Equal(even, E4M3.FromFloat(mid));
            Assert.Equal(code, E4M3.FromFloat(MathF.BitDecrement(mid)));
            Assert.Equal(code + 1, E4M3.FromFloat(MathF.BitIncrement(mid)));
            Assert.Equal(0x80 | even, E4M3.FromFloat(-mid));
        }

        // libtorch's cast does not saturate: 464 (the tie above 448) goes to even 0x7E, anything above to NaN.
        Assert.Equal(0x7E, E4M3.FromFloat(464f));
        Assert.Equal(0x7F, E4M3.FromFloat(MathF.BitIncrement(464f)));
        Assert.Equal(0x7F, E4M3.FromFloat(480f));
        Assert.Equal(0x7F, E4M3.FromFloat(float.PositiveInfinity));
        Assert.Equal(0xFF, E4M3.FromFloat(float.NegativeInfinity));
        Assert.Equal(0x7F, E4M3.FromFloat(BitConverter.UInt32BitsToSingle(0x7FC0_0000u)));
        Assert.Equal(0xFF, E4M3.FromFloat(float.NaN)); // .NET's float.NaN has the sign bit set (0xFFC00000)
        Assert.Equal(0x00, E4M3.FromFloat(1f / 1024)); // 2^-10: tie between 0 and 2^-9, to even 0
        Assert.Equal(0x80, E4M3.FromFloat(-0f));
    }

    /// <summary>
    /// The vectorised block-scale step over every fp32 value that reaches the cast (after the clamp, [2^-9, 448]):
    /// 150 M values, each compared to the reference's clamp-and-cast and its decoded value.
    /// </summary>
    [Fact]
    public void BlockScales_Vector_EqualReference_ExhaustivelyOverTheClampedRange()
    {
        uint first = BitConverter.SingleToUInt32Bits(1f / 512), last = BitConverter.SingleToUInt32Bits(448f);
        long mismatches = 0, checkedValues = 0;
        int threads = Environment.ProcessorCount;
        Parallel.For(0, threads, thread =>
        {
            Span<float> lanes = stackalloc float[16];
            long local = 0;
            // With t = 1 the division is exact, so the lanes' s are the values themselves.
            for (uint bits = first + (uint)(thread * 16); bits <= last; bits += (uint)(threads * 16))
            {
                for (int j = 0; j < 16; j++)
                {
                    lanes[j] = BitConverter.UInt32BitsToSingle(Math.Min(bits + (uint)j, last));
                }

                Interlocked.Add(ref checkedValues, 16);

                if (KernelPaths.Vector512Available)
                {
                    Vector512<uint> codes = Nvfp4Kernel.BlockScales(Vector512.Create<float>(lanes), Vector512<float>.One, out Vector512<float> values);
                    for (int j = 0; j < 16; j++)
                    {
                        byte expected = E4M3.FromFloat(lanes[j]);
                        if (codes[j] != expected || values[j] != E4M3.ToFloat(expected))
                        {
                            local++;
                        }
                    }
                }

                if (KernelPaths.Vector256Available)
                {
                    Vector256<uint> codes = Nvfp4Kernel.BlockScales(Vector256.Create<float>(lanes[..8]), Vector256<float>.One, out Vector256<float> values);
                    for (int j = 0; j < 8; j++)
                    {
                        byte expected = E4M3.FromFloat(lanes[j]);
                        if (codes[j] != expected || values[j] != E4M3.ToFloat(expected))
                        {
                            local++;
                        }
                    }
                }
            }

            Interlocked.Add(ref mismatches, local);
        });
        Assert.Equal(0, mismatches);
        Assert.True(checkedValues >= last - first + 1, $"{checkedValues} values checked");
    }

    [Fact]
    public void BlockScales_ZeroClampAndDivision_EqualReference()
    {
        // Block amaxes around every special case of step 3, with a non-trivial t.
        float weightScale2 = GlobalScale.FromAmax(0.8984375f);
        float t = 6f * weightScale2;
        var amaxes = new List<float> { 0f, float.Epsilon, 1e-30f, t / 1024, t / 512, MathF.BitDecrement(t / 512), t, t * 448, t * 464, t * 1e6f, 3e38f };
        var random = new Random(3);
        for (int i = 0; i < 20_000; i++)
        {
            amaxes.Add((float)(random.NextDouble() * t * 500 * Math.Pow(2, -random.Next(0, 20))));
        }

        while (amaxes.Count % 16 != 0)
        {
            amaxes.Add(0f);
        }

        float[] a = amaxes.ToArray();
        for (int i = 0; i < a.Length; i += 16)
        {
            if (KernelPaths.Vector512Available)
            {
                Vector512<uint> codes = Nvfp4Kernel.BlockScales(Vector512.Create(a.AsSpan(i, 16)), Vector512.Create(t), out _);
                for (int j = 0; j < 16; j++)
                {
                    Assert.Equal(Nvfp4Reference.BlockScale(a[i + j], weightScale2), codes[j]);
                }
            }

            if (KernelPaths.Vector256Available)
            {
                Vector256<uint> codes = Nvfp4Kernel.BlockScales(Vector256.Create(a.AsSpan(i, 8)), Vector256.Create(t), out _);
                for (int j = 0; j < 8; j++)
                {
                    Assert.Equal(Nvfp4Reference.BlockScale(a[i + j], weightScale2), codes[j]);
                }
            }
        }
    }

    [Fact]
    public void Widening_F16_EveryPattern()
    {
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++)
        {
            all[i] = (ushort)i;
        }

        for (int i = 0; i < all.Length; i += 16)
        {
            Vector512<float> wide512 = Widening.F16ToSingle(Vector512.Create(Array.ConvertAll(all[i..(i + 16)], x => (uint)x)));
            Vector256<float> wide256 = Widening.F16ToSingle(Vector256.Create(Array.ConvertAll(all[i..(i + 8)], x => (uint)x)));
            for (int j = 0; j < 16; j++)
            {
                float expected = (float)BitConverter.UInt16BitsToHalf(all[i + j]);
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected) & (float.IsNaN(expected) ? 0xFF80_0000u : ~0u),
                    BitConverter.SingleToUInt32Bits(wide512[j]) & (float.IsNaN(expected) ? 0xFF80_0000u : ~0u));
                Assert.Equal(BitConverter.SingleToUInt32Bits(Widening.F16ToSingle(all[i + j])), BitConverter.SingleToUInt32Bits(expected));
                if (j < 8)
                {
                    Assert.Equal(BitConverter.SingleToUInt32Bits(wide512[j]), BitConverter.SingleToUInt32Bits(wide256[j]));
                }
            }
        }
    }
}
