using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// The FP8 per-tensor bound holds for both of ModelOpt's operation orders (CPU: e4m3(T(w / s)); CUDA: the scale cast
/// to T first, e4m3(T(w / T(s)))) in every source dtype, and is tight: the neighbouring code of almost every element
/// exceeds it.
/// </summary>
public sealed class Fp8ErrorBoundTests
{
    [Theory]
    [InlineData(DType.BF16, 0.05f)]
    [InlineData(DType.BF16, 3.7f)]
    [InlineData(DType.F16, 0.02f)] // the scale (amax/448) falls into f16's subnormal range
    [InlineData(DType.F16, 1.3f)]
    [InlineData(DType.F32, 0.8f)]
    public void BothOrdersFitAndNeighboursDoNot(DType dtype, float amax)
    {
        var random = new Random(11);
        var weights = Enumerable.Range(0, 4096).Select(_ => InSource(dtype, (float)((random.NextDouble() * 2 - 1) * amax))).ToList();
        weights.Add(InSource(dtype, amax));
        weights.Add(InSource(dtype, -amax));
        weights.Add(0f);
        float max = weights.Max(Math.Abs);
        float scale = (float)(max / 448.0);
        var bound = new Fp8ErrorBound(scale, dtype);
        int neighboursWithin = 0, nonZero = 0;
        foreach (float w in weights)
        {
            foreach (float divisor in new[] { scale, InSource(dtype, scale) })
            {
                byte code = E4M3.FromFloat(InSource(dtype, w / divisor));
                Assert.True(Math.Abs(w - bound.Dequantize(code)) <= bound.Allowance(w, code),
                    $"w {w}, scale {scale}, divisor {divisor}: dequantized {bound.Dequantize(code)}, allowed {bound.Allowance(w, code)}");
            }
            byte own = E4M3.FromFloat(InSource(dtype, w / scale));
            if ((own & 0x7F) is 0 or 0x7E) continue;
            nonZero++;
            byte neighbour = (byte)(own + 1);
            if (Math.Abs(w - bound.Dequantize(neighbour)) <= bound.Allowance(w, neighbour)) neighboursWithin++;
        }
        // A neighbour is allowed only where w sits within the T rounding's slack of the midpoint between two codes.
        Assert.InRange(neighboursWithin, 0, nonZero / (dtype == DType.F32 ? 100 : 8));
    }

    /// <summary>x rounded to nearest-even in the source dtype, as the source (or ModelOpt's division in T) holds it.</summary>
    private static float InSource(DType dtype, float x) => dtype switch
    {
        DType.BF16 => BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(x) + 0x7FFFu + ((BitConverter.SingleToUInt32Bits(x) >> 16) & 1u)) & 0xFFFF0000u),
        DType.F16 => (float)(Half)x,
        _ => x,
    };
}
