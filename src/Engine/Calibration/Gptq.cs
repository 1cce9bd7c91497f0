using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// GPTQ for NVFP4 as ModelOpt does it (<c>model_calib.gptq</c>, <c>GPTQHelper</c> and <c>gptq_blockwise_update</c> /
/// the fused <c>gptq_fused_block_scalar</c> in modelopt/torch/quantization/utils/calib_utils.py):
/// <list type="number">
/// <item>block scales are static: max calibration of the ORIGINAL weight (per-16 block amax, the group's global amax)
/// before any update, exactly the scales dynamic NVFP4 would write; they never change while columns are updated;</item>
/// <item>U = upper Cholesky factor of the damped inverse Hessian (<see cref="GptqHessian"/>);</item>
/// <item>columns in their natural order (ModelOpt has no act_order), in blocks of <c>block_size</c>: each column is
/// rounded to the nearest E2M1 code at its block's fixed scale, its error <c>(w − q) / U[i,i]</c> is subtracted from the
/// block's later columns along row i of U, and after the block the errors update every later column at once
/// (<c>W[:, end:] −= Err · U[block, end:]</c>).</item>
/// </list>
/// Everything is fp32 as in ModelOpt. The per-element quantization is this project's NVFP4 numerics
/// (<c>E2M1.Encode(w / fl32(fp32(scale) × weight_scale_2))</c>, the divisor dequantization multiplies by), so the
/// codes chosen are exactly what re-quantizing the updated weight with the static scales gives.
/// </summary>
public static class Gptq
{
    public static GptqSolution Solve(string name, float[] weight, int rows, int cols, float[] hessian, float globalAmax, GptqOptions? options = null)
    {
        options ??= GptqOptions.Default;
        options.Validate();
        Validate(name, weight, rows, cols, hessian, globalAmax);
        float weightScale2 = GlobalScale.ForWeight(globalAmax);
        byte[] scales = StaticScales(weight, rows, cols, weightScale2);
        float[] divisors = scales.Select(s => E4M3.ToFloat(s) * weightScale2).ToArray();
        var (upper, dead, fallback) = GptqHessian.InverseCholesky(weight, rows, cols, hessian, options.PercDamp);

        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        Update(weight, rows, cols, upper, divisors, options.BlockSize, packed);
        var gptq = new GptqSolution(name, rows, cols, packed, scales, weightScale2, globalAmax, default!, dead, fallback, []);

        var nearest = new byte[packed.Length];
        RoundToNearest(weight, rows, cols, divisors, nearest);
        var maxError = GptqError.Relative(weight, Dequantize(nearest, scales, weightScale2, rows, cols), hessian, cols);
        var errors = new GptqErrors(GptqError.Relative(weight, gptq.Dequantize(), hessian, cols), maxError);
        var warnings = fallback
            ? new[] { $"'{name}': the damped Hessian is not positive definite; used the identity (round to nearest), as ModelOpt does." }
            : [];
        return new GptqSolution(name, rows, cols, packed, scales, weightScale2, globalAmax, errors, dead, fallback, warnings);
    }

    /// <summary>
    /// Max quantization in the same form, for a unit GPTQ has no data for (an expert no calibration token was routed to):
    /// round to nearest at the static scales, which is exactly dynamic NVFP4 at this global amax.
    /// </summary>
    public static GptqSolution Nearest(string name, float[] weight, int rows, int cols, float globalAmax, string reason)
    {
        Validate(name, weight, rows, cols, new float[(long)cols * cols], globalAmax);
        float weightScale2 = GlobalScale.ForWeight(globalAmax);
        byte[] scales = StaticScales(weight, rows, cols, weightScale2);
        var packed = new byte[Nvfp4.PackedLength(rows, cols)];
        RoundToNearest(weight, rows, cols, scales.Select(s => E4M3.ToFloat(s) * weightScale2).ToArray(), packed);
        return new GptqSolution(name, rows, cols, packed, scales, weightScale2, globalAmax, new GptqErrors(double.NaN, double.NaN), 0, true,
            [$"'{name}': {reason}; quantized with max calibration (round to nearest) instead of GPTQ."]);
    }

    /// <summary>Max-calibrated block scales of the original weight (the scales of dynamic NVFP4 at this global amax).</summary>
    internal static byte[] StaticScales(float[] weight, int rows, int cols, float weightScale2)
    {
        var scales = new byte[Nvfp4.ScaleLength(rows, cols)];
        for (int b = 0; b < scales.Length; b++)
        {
            float amax = 0f;
            foreach (float w in weight.AsSpan(b * Nvfp4.BlockSize, Nvfp4.BlockSize)) amax = MathF.Max(amax, MathF.Abs(w));
            scales[b] = Nvfp4Reference.BlockScale(amax, weightScale2);
        }
        return scales;
    }

    /// <summary>The GPTQ column loop: writes the codes of every element into <paramref name="packed"/>.</summary>
    private static unsafe void Update(float[] weight, int rows, int cols, float[] upper, float[] divisors, int blockSize, byte[] packed)
    {
        using var scope = NewDisposeScope();
        Tensor w = tensor(weight, [rows, cols], ScalarType.Float32);
        Tensor u = tensor(upper, [cols, cols], ScalarType.Float32);
        Tensor err = zeros(rows, blockSize, ScalarType.Float32);
        // CPU tensors: their native memory does not move, so the column loop works on it in place.
        var wBase = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(w.bytes));
        var eBase = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(err.bytes));
        int blocksPerRow = cols / Nvfp4.BlockSize;
        for (int start = 0; start < cols; start += blockSize)
        {
            int end = Math.Min(start + blockSize, cols), width = end - start;
            Parallel.For(0, rows, r =>
            {
                var row = new Span<float>((float*)wBase + (long)r * cols, cols);
                var errors = new Span<float>((float*)eBase + (long)r * blockSize, blockSize);
                for (int i = start; i < end; i++)
                {
                    float value = row[i];
                    float divisor = divisors[r * blocksPerRow + i / Nvfp4.BlockSize];
                    byte code = E2M1.Encode(value / divisor);
                    packed[(r * cols + i) / 2] |= (byte)((i & 1) == 0 ? code : code << 4);
                    float e = (value - E2M1.Decode(code) * divisor) / upper[(long)i * cols + i];
                    errors[i - start] = e;
                    var uRow = upper.AsSpan((int)((long)i * cols), cols);
                    for (int j = i + 1; j < end; j++) row[j] -= e * uRow[j];
                }
            });
            if (end < cols)
            {
                using var blockScope = NewDisposeScope();
                Tensor blockErrors = err.narrow(1, 0, width);
                w.narrow(1, end, cols - end).sub_(blockErrors.matmul(u.narrow(0, start, width).narrow(1, end, cols - end)));
            }
        }
    }

    /// <summary>Round to nearest at the given scales: max calibration's codes, the baseline GPTQ is measured against.</summary>
    internal static void RoundToNearest(ReadOnlySpan<float> weight, int rows, int cols, ReadOnlySpan<float> divisors, Span<byte> packed)
    {
        for (long k = 0; k < (long)rows * cols; k++)
        {
            byte code = E2M1.Encode(weight[(int)k] / divisors[(int)(k / Nvfp4.BlockSize)]);
            packed[(int)(k / 2)] |= (byte)((k & 1) == 0 ? code : code << 4);
        }
    }

    private static float[] Dequantize(byte[] packed, byte[] scales, float weightScale2, int rows, int cols)
    {
        var values = new float[(long)rows * cols];
        Nvfp4.Dequantize(packed, scales, weightScale2, rows, cols, values);
        return values;
    }

    private static void Validate(string name, float[] weight, int rows, int cols, float[] hessian, float globalAmax)
    {
        Nvfp4.ValidateShape(name, rows, cols);
        if (rows <= 0 || weight.Length != (long)rows * cols || hessian.Length != (long)cols * cols)
            throw new ModelOptException(GptqErrorIds.GptqShapeMismatch, ErrorKind.InvalidArgument,
                $"GPTQ of '{name}' [{rows}, {cols}]: expected {(long)rows * cols} weights and a {cols}×{cols} Hessian; got {weight.Length} and {hessian.Length} values.");
        if (!(globalAmax >= 0f) || !float.IsFinite(globalAmax))
            throw new ModelOptException(NumericsErrorIds.InvalidGlobalAmax, ErrorKind.InvalidArgument,
                $"GPTQ of '{name}': the global amax ({globalAmax}) must be a finite number ≥ 0.");
        if (!weight.All(float.IsFinite) || !hessian.All(float.IsFinite))
            throw new ModelOptException(GptqErrorIds.GptqNonFiniteInput, ErrorKind.InvalidData,
                $"GPTQ of '{name}': the weight or its Hessian contains NaN or Inf.");
    }
}
