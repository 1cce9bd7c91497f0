using System.Runtime.InteropServices;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Numerics;

/// <summary>
/// What the searched block scales are for, measured against max (dynamic) scales on the same weight and global scale:
/// the FP8 scale sweep's candidates include the max scale, so its squared weight error can only be lower per block; local
/// Hessian minimises dwᵀ·H·dw per block, so with inputs whose columns correlate inside a block the layer output
/// ‖X·Wᵀ − X·Ŵᵀ‖² drops well below max's.
/// </summary>
public sealed class SearchBeatsMaxTests
{
    private const int Rows = 48, Cols = 128, Tokens = 512;

    [Fact]
    public void Fp8ScaleSweep_NeverLosesToMaxInAnyBlock_AndWinsOverall()
    {
        var rng = new Random(11);
        float[] weight = HeavyTailed(rng, Rows * Cols);
        float amax = weight.Max(MathF.Abs);
        float[] max = MaxFakeQuantized(weight, amax);
        float[] swept = Searched(weight, amax, default);
        double totalMax = 0, totalSwept = 0;
        for (int block = 0; block < Rows * Cols / 16; block++)
        {
            double eMax = 0, eSwept = 0;
            for (int i = block * 16; i < block * 16 + 16; i++)
            {
                eMax += Square(weight[i] - max[i]);
                eSwept += Square(weight[i] - swept[i]);
            }
            Assert.True(eSwept <= eMax * (1 + 1e-6) + 1e-30, $"block {block}: sweep {eSwept:E3} > max {eMax:E3}");
            totalMax += eMax;
            totalSwept += eSwept;
        }
        Assert.True(totalSwept < 0.95 * totalMax, $"sweep {totalSwept:E3} vs max {totalMax:E3}");
    }

    [Fact]
    public void LocalHessian_LowersTheLayerOutputErrorAgainstMax()
    {
        var rng = new Random(5);
        float[] weight = HeavyTailed(rng, Rows * Cols);
        float amax = weight.Max(MathF.Abs);
        // Inputs whose 16 columns of a block share a strong common component with per-column gains, as activations of
        // one channel group do: H = XᵀX/N is far from diagonal, which is where the Hessian loss differs from plain MSE.
        var x = new float[Tokens * Cols];
        var gain = Enumerable.Range(0, Cols).Select(_ => (float)(0.2 + 3 * rng.NextDouble())).ToArray();
        for (int t = 0; t < Tokens; t++)
        {
            for (int b = 0; b < Cols / 16; b++)
            {
                double shared = Gaussian(rng);
                for (int c = b * 16; c < b * 16 + 16; c++) x[t * Cols + c] = (float)(gain[c] * (shared + 0.2 * Gaussian(rng)));
            }
        }
        float[] hessian = HessianBlocks(x);
        double outputMax = OutputError(x, weight, MaxFakeQuantized(weight, amax));
        double outputSwept = OutputError(x, weight, Searched(weight, amax, default));
        double outputHessian = OutputError(x, weight, Searched(weight, amax, hessian));
        Assert.True(outputHessian < 0.9 * outputMax, $"local Hessian {outputHessian:E3} vs max {outputMax:E3}");
        Assert.True(outputHessian < outputSwept, $"local Hessian {outputHessian:E3} vs plain sweep {outputSwept:E3}");
    }

    private static float[] MaxFakeQuantized(float[] weight, float amax)
    {
        var copy = (float[])weight.Clone();
        Nvfp4.FakeQuantizeInPlace("max", copy, Rows, Cols, new Nvfp4Options { GlobalAmax = amax });
        return copy;
    }

    private static float[] Searched(float[] weight, float amax, float[]? hessian)
    {
        var scales = new byte[Nvfp4.ScaleLength(Rows, Cols)];
        Nvfp4Search.Fp8ScaleSweep("searched", MemoryMarshal.AsBytes(weight.AsSpan()), DType.F32, Rows, Cols, amax, scales, hessian);
        var copy = (float[])weight.Clone();
        Nvfp4Static.FakeQuantizeInPlace(copy, Rows, Cols, scales, GlobalScale.ForWeight(amax));
        return copy;
    }

    /// <summary>The block diagonal of XᵀX/N, [cols/16, 16, 16] row-major, in double then rounded once.</summary>
    private static float[] HessianBlocks(float[] x)
    {
        var h = new float[Cols / 16 * 256];
        for (int b = 0; b < Cols / 16; b++)
            for (int i = 0; i < 16; i++)
                for (int j = 0; j < 16; j++)
                {
                    double sum = 0;
                    for (int t = 0; t < Tokens; t++) sum += (double)x[t * Cols + b * 16 + i] * x[t * Cols + b * 16 + j];
                    h[b * 256 + i * 16 + j] = (float)(sum / Tokens);
                }
        return h;
    }

    /// <summary>‖X·Wᵀ − X·Ŵᵀ‖² in double.</summary>
    private static double OutputError(float[] x, float[] weight, float[] quantized)
    {
        double total = 0;
        for (int t = 0; t < Tokens; t++)
            for (int r = 0; r < Rows; r++)
            {
                double dot = 0;
                for (int c = 0; c < Cols; c++) dot += (double)x[t * Cols + c] * (weight[r * Cols + c] - quantized[r * Cols + c]);
                total += dot * dot;
            }
        return total;
    }

    private static float[] HeavyTailed(Random rng, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)(Gaussian(rng) * (rng.NextDouble() < 0.02 ? 8 : 1) * 0.02)).ToArray();

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double Square(double v) => v * v;
}
