using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// ModelOpt's NVFP4 weight quantization written the way ModelOpt writes it, as libtorch tensor operations
/// (<c>nvfp4_tensor.py</c>: reshape to blocks, per-block amax, divide, zero→1, clamp, cast to float8_e4m3fn, divide the
/// weights, <c>_cast_fp4</c> with searchsorted and the odd-bound tie mask, pack nibbles). Not used in production:
/// it is an independent oracle for the tests and the libtorch peer of the benchmark.
/// </summary>
internal static class Nvfp4Torch
{
    /// <summary>
    /// Quantizes a [rows, cols] weight tensor (any float dtype) and returns the packed bytes, scale bytes and
    /// weight_scale_2. <paramref name="order"/> picks the global-scale rounding (CUDA: multiply by fl32(1/2688)).
    /// </summary>
    public static (byte[] Packed, byte[] Scales, float WeightScale2) Quantize(Tensor weight, GlobalScaleOrder order)
    {
        using DisposeScope scope = NewDisposeScope();
        (Tensor packed, Tensor scales, Tensor weightScale2) = QuantizeTensors(weight, order);
        return (packed.bytes.ToArray(), scales.bytes.ToArray(), weightScale2.item<float>());
    }

    /// <summary>
    /// The same, leaving the results as tensors (uint8 [rows, cols/2], float8_e4m3fn [rows, cols/16], fp32 0-d) in the
    /// caller's dispose scope: the benchmark times only the tensor work.
    /// </summary>
    public static (Tensor Packed, Tensor Scales, Tensor WeightScale2) QuantizeTensors(Tensor weight, GlobalScaleOrder order)
    {
        TorchRuntime.EnsureLoaded();
        long rows = weight.shape[0], cols = weight.shape[1];

        // weight_scale_2 = amax / (6 · 448), in the order the device would use.
        Tensor amax = weight.abs().amax().to(float32);
        Tensor weightScale2 = order == GlobalScaleOrder.Cuda
            ? amax * tensor(GlobalScale.Reciprocal)
            : amax / tensor(GlobalScale.Divisor);

        // get_weights_scaling_factor: per-block amax / (6 · wsf2), zero → 1, clamp, cast.
        Tensor blocks = weight.to(float32).reshape(rows, cols / 16, 16);
        Tensor blockAmax = blocks.abs().amax([-1]);
        Tensor perBlockScale = blockAmax / weightScale2.mul(Scalars.Of((double)E2M1.MaxValue));
        perBlockScale = perBlockScale.masked_fill(perBlockScale.eq(Scalars.Of(0L)), Scalars.Of(1.0));
        Tensor scaleFp8 = perBlockScale.clamp(Scalars.Of((double)E4M3.MinSubnormal), Scalars.Of((double)E4M3.MaxValue)).to(TorchFloat8.Float8E4M3Fn);

        // quantize: weight / (fp32(weight_scale) · wsf2), then _cast_fp4.
        Tensor scaled = blocks / (scaleFp8.to(float32) * weightScale2).unsqueeze(-1);
        Tensor codes = CastFp4(scaled).reshape(rows, cols);

        // Pack: (q[..., 1::2] << 4) | q[..., 0::2].
        Tensor high = codes[TensorIndex.Ellipsis, TensorIndex.Slice(1, null, 2)];
        Tensor low = codes[TensorIndex.Ellipsis, TensorIndex.Slice(0, null, 2)];
        Tensor packed = high.bitwise_left_shift(4).bitwise_or(low).contiguous();
        return (packed, scaleFp8.contiguous(), weightScale2);
    }

    /// <summary>
    /// A tensor holding <paramref name="raw"/>'s bytes reinterpreted as <paramref name="type"/> (TorchSharp 0.107 has no
    /// <c>view(dtype)</c>, and its <c>frombuffer</c> converts values instead of reinterpreting bytes).
    /// </summary>
    public static Tensor FromRawBytes(byte[] raw, ScalarType type, params long[] shape)
    {
        TorchRuntime.EnsureLoaded();
        Tensor result = empty(shape, type);
        result.bytes = raw;
        return result;
    }

    /// <summary>ModelOpt's <c>_cast_fp4</c>: sign bit, searchsorted ordinal, +1 on exact odd-index bounds.</summary>
    private static Tensor CastFp4(Tensor x)
    {
        Tensor bounds = tensor(E2M1.Bounds.ToArray());
        Tensor oddMask = tensor(new byte[] { 0, 1, 0, 1, 0, 1, 0 });
        Tensor sign = x.lt(Scalars.Of(0L)).to(uint8);
        Tensor magnitude = x.abs();
        Tensor ord = searchsorted(bounds, magnitude, out_int32: true).to(uint8);
        Tensor round = magnitude.unsqueeze(-1).eq(bounds).to(uint8).mul(oddMask).any(-1).to(uint8);
        return sign.mul(Scalars.Of(8L)).add(ord, Scalars.One).add(round, Scalars.One).to(uint8);
    }
}
