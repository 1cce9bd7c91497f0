using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Tests.Calibration;

/// <summary>
/// An independent GPTQ in double, as plain loops and without lazy batching (Frantar et al., Algorithm 1): dead columns
/// and damping as ModelOpt, Cholesky by hand, every later column updated right after each column. The NVFP4 rounding
/// at a block scale is the only shared piece (E2M1.Encode on w / divisor).
/// </summary>
internal static class GptqReference
{
    /// <summary>Codes [rows, cols] (one per element, unpacked).</summary>
    public static byte[] Solve(float[] weight, int rows, int cols, float[] hessian, float[] divisors, double percDamp)
    {
        var h = hessian.Select(v => (double)v).ToArray();
        for (int c = 0; c < cols; c++)
        {
            bool dead = true;
            for (int r = 0; r < rows; r++) dead &= weight[r * cols + c] == 0f;
            if (!dead) continue;
            for (int k = 0; k < cols; k++) h[c * cols + k] = h[k * cols + c] = 0;
            h[c * cols + c] = 1;
        }
        double damp = percDamp * Enumerable.Range(0, cols).Average(i => h[i * cols + i]);
        for (int i = 0; i < cols; i++) h[i * cols + i] += damp;

        var u = UpperCholesky(Inverse(h, cols), cols);
        var w = weight.Select(v => (double)v).ToArray();
        var codes = new byte[rows * cols];
        for (int i = 0; i < cols; i++)
            for (int r = 0; r < rows; r++)
            {
                float divisor = divisors[(r * cols + i) / Nvfp4.BlockSize];
                byte code = E2M1.Encode((float)w[r * cols + i] / divisor);
                codes[r * cols + i] = code;
                double err = (w[r * cols + i] - E2M1.Decode(code) * (double)divisor) / u[i * cols + i];
                for (int j = i + 1; j < cols; j++) w[r * cols + j] -= err * u[i * cols + j];
            }
        return codes;
    }

    /// <summary>Gauss-Jordan inverse of a symmetric positive definite matrix.</summary>
    private static double[] Inverse(double[] a, int n)
    {
        var m = (double[])a.Clone();
        var inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int p = 0; p < n; p++)
        {
            double pivot = m[p * n + p];
            for (int k = 0; k < n; k++) { m[p * n + k] /= pivot; inv[p * n + k] /= pivot; }
            for (int r = 0; r < n; r++)
            {
                if (r == p) continue;
                double f = m[r * n + p];
                for (int k = 0; k < n; k++) { m[r * n + k] -= f * m[p * n + k]; inv[r * n + k] -= f * inv[p * n + k]; }
            }
        }
        return inv;
    }

    /// <summary>U with A = UᵀU, U upper triangular.</summary>
    private static double[] UpperCholesky(double[] a, int n)
    {
        var u = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++)
            {
                double sum = a[i * n + j];
                for (int k = 0; k < i; k++) sum -= u[k * n + i] * u[k * n + j];
                u[i * n + j] = i == j ? Math.Sqrt(sum) : sum / u[i * n + i];
            }
        return u;
    }
}
