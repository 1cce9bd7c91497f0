using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// FP8 test tensors: one element is exactly <c>amax</c> (so the scale is known while building), the rest are bands of
/// rows of different kinds, all with |w| ≤ amax after rounding to the source type.
/// </summary>
internal static class Fp8Data
{
    /// <summary>
    /// Rows cycle through: weight-like normal (with outliers and zeros), heavy-tailed (normal / uniform, Cauchy-like),
    /// quotients on E4M3 ties and their neighbours (±1..2 ulps of the source type), quotients in E4M3's subnormal range
    /// (and the source type's own subnormals for F16), uniform over [-amax, amax], and rows of +0/-0.
    /// </summary>
    public static float[] Mixed(int rows, int cols, float amax, DType dtype, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * cols];
        float scale = Fp8.WeightScale(amax);
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = values.AsSpan(r * cols, cols);
            switch (r % 6)
            {
                case 0:
                    float[] weightLike = NumericsData.WeightLike(1, cols, seed * 1000 + r);
                    float peak = weightLike.Max(MathF.Abs);
                    for (int c = 0; c < cols; c++)
                    {
                        row[c] = peak > 0 ? weightLike[c] / peak * amax * (float)random.NextDouble() : 0f;
                    }

                    break;
                case 1:
                    for (int c = 0; c < cols; c++)
                    {
                        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
                        double normal = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                        double heavy = normal / Math.Max(1e-6, random.NextDouble()) * amax / 200;
                        row[c] = (float)Math.Clamp(heavy, -amax, amax);
                    }

                    break;
                case 2:
                    for (int c = 0; c < cols; c++)
                    {
                        // A quotient on a tie between neighbouring E4M3 values (or on a value), nudged by 0..2 source ulps.
                        int code = random.Next(0, 0x7E);
                        float low = E4M3.ToFloat((byte)code), high = E4M3.ToFloat((byte)(code + 1));
                        float target = random.Next(3) == 0 ? low : (low + high) / 2;
                        float w = NumericsData.RoundTo(target * scale, dtype);
                        for (int k = random.Next(-2, 3); k != 0; k -= Math.Sign(k))
                        {
                            w = NumericsData.Step(w, dtype, Math.Sign(k));
                        }

                        row[c] = Math.Min(w, amax) * (random.Next(2) == 0 ? 1 : -1);
                    }

                    break;
                case 3:
                    for (int c = 0; c < cols; c++)
                    {
                        // Quotients below 2^-5: E4M3 subnormals, their ties, and the first normals.
                        float w = (float)(random.NextDouble() / 32) * scale;
                        row[c] = random.Next(2) == 0 ? w : -w;
                    }

                    break;
                case 4:
                    for (int c = 0; c < cols; c++)
                    {
                        row[c] = (float)(random.NextDouble() * 2 - 1) * amax;
                    }

                    break;
                default:
                    for (int c = 0; c < cols; c++)
                    {
                        row[c] = random.Next(2) == 0 ? 0f : -0f;
                    }

                    break;
            }
        }

        values[0] = amax;
        return values;
    }
}
