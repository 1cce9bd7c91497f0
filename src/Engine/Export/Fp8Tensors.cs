using System.Buffers;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// One FP8 per-tensor Linear as ModelOpt exports it (unified_export_hf.py <c>_export_quantized_weight</c>, quant_utils.py
/// <c>to_quantized_weight</c>): <c>weight</c> F8_E4M3 <c>[out, in]</c> = e4m3(w / weight_scale), <c>weight_scale</c> F32 0-d
/// = amax / 448, <c>input_scale</c> F32 0-d = input amax / 448. The bytes and scales come from <see cref="Fp8"/>.
/// </summary>
internal static class Fp8Tensors
{
    public static IEnumerable<OutputTensor> For(WeightUnit unit, ScaleGroups scales, ExportOptions options, List<string> warnings)
    {
        string p = unit.OutputPrefix;
        float amax = scales.WeightAmax(unit);
        // Computed now, not when written: a bad input amax must stop the export before its first byte.
        float inputScale = Fp8.ActivationScale(scales.InputAmax(unit), unit.InputQuantizer!, options.Order);
        return
        [
            new OutputTensor(new TensorSpec($"{p}.weight", DType.F8_E4M3, [unit.Rows, unit.Cols]), w => WriteCodes(w, unit, amax, options, warnings)),
            OutputTensor.Scalar($"{p}.weight_scale", Fp8.WeightScale(amax), oneElementVector: false),
            OutputTensor.Scalar($"{p}.input_scale", inputScale, oneElementVector: false),
        ];
    }

    private static void WriteCodes(CheckpointWriter writer, WeightUnit unit, float amax, ExportOptions options, List<string> warnings)
    {
        int length = checked(unit.Rows * unit.Cols);
        var codes = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            using var weight = unit.Read();
            var result = Fp8.Quantize(unit.OutputPrefix + ".weight", weight.Span, unit.DType, unit.Rows, unit.Cols, codes.AsSpan(0, length),
                new Fp8Options { Amax = amax, Order = options.Order });
            warnings.AddRange(result.Warnings);
            writer.WriteTensor(unit.OutputPrefix + ".weight", codes.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(codes);
        }
    }
}
