using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>A random test layer: weight W [rows, cols], correlated inputs X [tokens, cols], H = XᵀX/N, and the output error.</summary>
internal sealed class GptqTestLayer
{
    public GptqTestLayer(int rows, int cols, int tokens, int seed)
    {
        var random = new Random(seed);
        Rows = rows;
        Cols = cols;
        Weight = Enumerable.Range(0, rows * cols).Select(_ => (float)Normal(random)).ToArray();
        // Mixed inputs (X = Z·A with a few heavy channels), so H is far from diagonal, as real activations are.
        var mix = Enumerable.Range(0, cols * cols).Select(_ => Normal(random) / Math.Sqrt(cols)).ToArray();
        Inputs = new double[tokens * cols];
        for (int t = 0; t < tokens; t++)
        {
            var z = Enumerable.Range(0, cols).Select(c => Normal(random) * (c % 7 == 0 ? 4 : 1)).ToArray();
            for (int c = 0; c < cols; c++)
            {
                double sum = z[c];
                for (int k = 0; k < cols; k++) sum += z[k] * mix[k * cols + c];
                Inputs[t * cols + c] = sum;
            }
        }
        Hessian = HessianOf(Inputs, tokens, cols);
    }

    public int Rows { get; }

    public int Cols { get; }

    public float[] Weight { get; }

    public double[] Inputs { get; }

    public float[] Hessian { get; }

    public int Tokens => Inputs.Length / Cols;

    public float GlobalAmax => Weight.Max(MathF.Abs);

    /// <summary>‖X Wᵀ − X Ŵᵀ‖² in double.</summary>
    public double OutputError(float[] quantized)
    {
        double total = 0;
        for (int t = 0; t < Tokens; t++)
            for (int r = 0; r < Rows; r++)
            {
                double d = 0;
                for (int c = 0; c < Cols; c++) d += Inputs[t * Cols + c] * (quantized[r * Cols + c] - Weight[r * Cols + c]);
                total += d * d;
            }
        return total;
    }

    /// <summary>Dynamic NVFP4 (max calibration) of the weight at its own amax, dequantized.</summary>
    public float[] MaxQuantized()
    {
        var values = new float[Weight.Length];
        Weight.CopyTo(values, 0);
        Nvfp4.FakeQuantizeInPlace("max", values, Rows, Cols, new Nvfp4Options { GlobalAmax = GlobalAmax });
        return values;
    }

    public static float[] HessianOf(double[] inputs, int tokens, int cols)
    {
        var h = new float[cols * cols];
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
            {
                double sum = 0;
                for (int t = 0; t < tokens; t++) sum += inputs[t * cols + i] * inputs[t * cols + j];
                h[i * cols + j] = (float)(sum / tokens);
            }
        return h;
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
