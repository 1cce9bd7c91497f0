using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>The quantized forms compute on managed float arrays: a tensor's values out, and a torch-owned tensor back.</summary>
internal static class FloatTensors
{
    /// <summary><paramref name="x"/>'s values as float32, row-major.</summary>
    public static float[] Values(Tensor x) => x.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();

    /// <summary>
    /// A torch-owned copy of <paramref name="values"/> shaped and typed like <paramref name="like"/>. Copying matters:
    /// a tensor over a managed array inherits its alignment, and BLAS kernels round differently for differently
    /// aligned inputs, which made repeated measurements differ in the last bits.
    /// </summary>
    public static Tensor ToTensor(float[] values, long[] shape, Tensor like)
    {
        using var wrapped = tensor(values, shape, dtype: ScalarType.Float32);
        return wrapped.to(like.dtype, like.device, copy: true);
    }
}
