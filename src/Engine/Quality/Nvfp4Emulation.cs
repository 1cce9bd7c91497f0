using System.Buffers;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// NVFP4 as an inference engine computes it, on torch tensors: quantize to E2M1 with E4M3 block scales against a
/// given global scale, then dequantize, with the same kernel (and so the same bytes) the export writes. For
/// activations the global scale is the calibrated <c>input_scale</c> and block scales are computed per token and
/// 16-element block, as NVFP4 W4A4 kernels do at run time.
/// </summary>
internal static class Nvfp4Emulation
{
    /// <summary>Fake-quantizes <paramref name="x"/> (last dimension a multiple of 16) with global scale <paramref name="globalScale"/>.</summary>
    public static Tensor FakeQuantize(Tensor x, float globalScale)
    {
        long cols = x.shape[^1];
        int rows = checked((int)(x.numel() / cols));
        var values = FloatTensors.Values(x);
        FakeQuantizeInPlace(values, rows, (int)cols, globalScale);
        return FloatTensors.ToTensor(values, x.shape, x);
    }

    public static void FakeQuantizeInPlace(float[] values, int rows, int cols, float globalScale)
    {
        int packedLength = Nvfp4.PackedLength(rows, cols), scaleLength = Nvfp4.ScaleLength(rows, cols);
        var packed = ArrayPool<byte>.Shared.Rent(packedLength);
        var scales = ArrayPool<byte>.Shared.Rent(scaleLength);
        try
        {
            Nvfp4Kernel.Quantize(MemoryMarshal.AsBytes(values.AsSpan()), DType.F32, rows, cols, globalScale,
                packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength), KernelPath.Auto);
            Nvfp4Kernel.Dequantize(packed.AsSpan(0, packedLength), scales.AsSpan(0, scaleLength), globalScale, rows, cols, values, KernelPath.Auto);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
            ArrayPool<byte>.Shared.Return(scales);
        }
    }
}
