using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Torch;

/// <summary>libtorch's float8 casts, used as an independent check of the engine's own FP8 encoding.</summary>
public static class TorchFloat8
{
    /// <summary>libtorch's Float8_e4m3fn; TorchSharp 0.107's <see cref="ScalarType"/> stops at BFloat16 (15).</summary>
    public const ScalarType Float8E4M3Fn = (ScalarType)24;

    /// <summary>The float8_e4m3fn bytes libtorch produces for <paramref name="values"/>. Loads libtorch if needed.</summary>
    public static byte[] ToE4M3FnBytes(float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        TorchRuntime.EnsureLoaded();
        using DisposeScope scope = NewDisposeScope();
        using Tensor fp8 = tensor(values).to(Float8E4M3Fn);
        return fp8.bytes.ToArray();
    }
}
