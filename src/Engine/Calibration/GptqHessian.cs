using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// ModelOpt's <c>compute_hessian_inverse</c> (modelopt/torch/quantization/utils/calib_utils.py), in fp32 as there:
/// input columns whose weights are all zero get a zero Hessian row and column with 1 on the diagonal; then
/// <c>perc_damp × mean(diag H)</c> is added to the diagonal; the result is the upper Cholesky factor U of
/// <c>(H + damp·I)⁻¹</c> (<c>cholesky_inverse(cholesky(H))</c>, then <c>cholesky(·, upper=True)</c>). When the damped
/// Hessian is not positive definite ModelOpt warns and uses the identity; so does this.
/// </summary>
internal static class GptqHessian
{
    /// <returns>U [cols, cols] row-major, the dead column count, and whether the identity fallback was taken.</returns>
    public static (float[] Upper, int DeadColumns, bool Fallback) InverseCholesky(
        ReadOnlySpan<float> weight, int rows, int cols, ReadOnlySpan<float> hessian, double percDamp)
    {
        var dead = DeadColumns(weight, rows, cols);
        using var scope = NewDisposeScope();
        Tensor h = tensor(hessian.ToArray(), [cols, cols], ScalarType.Float32);
        if (dead.Count > 0)
        {
            Tensor index = tensor(dead.Select(c => (long)c).ToArray());
            h.index_fill_(0, index, Scalars.Of(0.0));
            h.index_fill_(1, index, Scalars.Of(0.0));
            h.diagonal().index_fill_(0, index, Scalars.Of(1.0));
        }
        // fp32 product as in PyTorch: a Python float times a 0-d fp32 tensor stays fp32.
        float damp = (float)percDamp * h.diagonal().mean().item<float>();
        using (var dampScalar = Scalars.Temporary(damp))
            h.diagonal().add_(dampScalar, Scalars.One);

        var (lower, info) = linalg.cholesky_ex(h);
        if (info.item<int>() != 0) return (Identity(cols), dead.Count, true);
        Tensor inverse = cholesky_inverse(lower);
        var (lowerOfInverse, info2) = linalg.cholesky_ex(inverse);
        if (info2.item<int>() != 0) return (Identity(cols), dead.Count, true);
        // cholesky(A, upper=True) = cholesky(A)ᵀ.
        return (lowerOfInverse.t().contiguous().data<float>().ToArray(), dead.Count, false);
    }

    /// <summary>Columns of <paramref name="weight"/> [rows, cols] that are zero in every row (ModelOpt: <c>weight.eq(0).all(dim=0)</c>).</summary>
    private static List<int> DeadColumns(ReadOnlySpan<float> weight, int rows, int cols)
    {
        var alive = new bool[cols];
        for (int r = 0; r < rows; r++)
        {
            var row = weight.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
                if (row[c] != 0f) alive[c] = true;
        }
        return Enumerable.Range(0, cols).Where(c => !alive[c]).ToList();
    }

    private static float[] Identity(int cols)
    {
        var eye = new float[(long)cols * cols];
        for (int i = 0; i < cols; i++) eye[(long)i * cols + i] = 1f;
        return eye;
    }
}
