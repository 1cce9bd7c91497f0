using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The one place that turns a planned NVFP4 weight unit into its codes, block scales and <c>weight_scale_2</c> by the
/// plan's algorithm: the export writes these bytes and quality measurement dequantizes them, so what is measured is
/// what is exported. Max: each block's scale from its own max |w| (<see cref="Nvfp4.Quantize"/>). Mse, MseFp8Sweep and
/// LocalHessian: block scales searched by <see cref="Nvfp4Search"/> (local Hessian with the unit's H blocks from
/// calibration; an expert that saw no token falls back to the FP8 sweep, with a warning), then packed with them by
/// <see cref="Nvfp4Static"/>. Gptq: the unit's <see cref="GptqSolution"/> from Invoke-Calibration. The global amax is
/// always the unit's group max (<see cref="ScaleGroups"/>), unified before any search, so the shards an engine merges
/// (q/k/v, gate/up, …) share <c>weight_scale_2</c>; the searches choose their scales for the CUDA-order
/// <c>weight_scale_2</c>, which they therefore always write.
/// </summary>
public sealed class WeightQuantization
{
    /// <summary>Export refuses a data-dependent algorithm whose calibration data is missing.</summary>
    public const string WeightCalibrationMissing = nameof(WeightCalibrationMissing);

    private readonly WeightAlgorithm _algorithm;
    private readonly IReadOnlyDictionary<string, HessianBlocks> _hessians;
    private readonly IReadOnlyDictionary<string, GptqSolution> _solutions;
    private readonly string _modelPath;

    private WeightQuantization(WeightAlgorithm algorithm, IReadOnlyDictionary<string, HessianBlocks> hessians,
        IReadOnlyDictionary<string, GptqSolution> solutions, string modelPath)
    {
        _algorithm = algorithm;
        _hessians = hessians;
        _solutions = solutions;
        _modelPath = modelPath;
    }

    /// <summary>
    /// The quantization of <paramref name="plan"/>'s NVFP4 weights for <paramref name="model"/>; refuses a local-Hessian
    /// plan without Hessian blocks and a GPTQ plan without solutions (<see cref="WeightCalibrationMissing"/>).
    /// </summary>
    public static WeightQuantization For(HFModel model, QuantPlan plan)
    {
        var algorithm = plan.WeightAlgorithm ?? WeightAlgorithm.Max;
        var hessians = model.Statistics?.HessianBlocks ?? new Dictionary<string, HessianBlocks>();
        var solutions = model.WeightSolutions ?? new Dictionary<string, GptqSolution>();
        if (algorithm == WeightAlgorithm.LocalHessian && hessians.Count == 0)
            throw Missing(model, plan, "the Hessian blocks of the calibration inputs", model.Statistics is null ? "the model has no calibration statistics" : "its statistics were collected for another algorithm");
        if (algorithm == WeightAlgorithm.Gptq && solutions.Count == 0)
            throw Missing(model, plan, "GPTQ's quantized weights", model.Statistics is null ? "the model has not been calibrated" : "it was calibrated for another algorithm");
        return new WeightQuantization(algorithm, hessians, solutions, model.Path);
    }

    private static ModelOptException Missing(HFModel model, QuantPlan plan, string what, string why) =>
        new(WeightCalibrationMissing, ErrorKind.InvalidOperation,
            $"Plan '{plan.RecipeName}' quantizes its NVFP4 weights by {plan.Algorithm}, which needs {what}, but {why}: pipe the model " +
            "through Invoke-Calibration after Set-QuantConfig (and before Export-Nvfp4 or Measure-QuantQuality), or choose a data-free " +
            "weight algorithm (Set-QuantConfig -Algorithm Max, Mse or MseFp8Sweep).", model.Path);

    /// <summary>The <c>weight_scale_2</c> the unit is written with.</summary>
    public float WeightScale2(WeightUnit unit, float groupAmax, GlobalScaleOrder order) => _algorithm switch
    {
        WeightAlgorithm.Max => GlobalScale.ForWeight(groupAmax, order),
        WeightAlgorithm.Gptq when Solution(unit, groupAmax) is { } solution => solution.WeightScale2,
        WeightAlgorithm.Gptq => GlobalScale.ForWeight(groupAmax, order), // outside the decoder layers: max
        _ => GlobalScale.ForWeight(groupAmax),
    };

    /// <summary>
    /// Quantizes <paramref name="weight"/> (the unit's values, in <paramref name="dtype"/>) into <paramref name="packed"/>
    /// [rows, cols/2] and <paramref name="blockScales"/> [rows, cols/16]; returns the warnings (zero tensors, saturation,
    /// fallbacks).
    /// </summary>
    public IReadOnlyList<string> Quantize(WeightUnit unit, ReadOnlySpan<byte> weight, DType dtype, float groupAmax, GlobalScaleOrder order,
        Span<byte> packed, Span<byte> blockScales)
    {
        string name = unit.OutputPrefix + ".weight";
        switch (_algorithm)
        {
            case WeightAlgorithm.Mse:
                Nvfp4Search.MultiplierSearch(name, weight, dtype, unit.Rows, unit.Cols, groupAmax, blockScales);
                return Nvfp4Static.Quantize(name, weight, dtype, unit.Rows, unit.Cols, blockScales, GlobalScale.ForWeight(groupAmax), packed).Warnings;
            case WeightAlgorithm.MseFp8Sweep:
                Nvfp4Search.Fp8ScaleSweep(name, weight, dtype, unit.Rows, unit.Cols, groupAmax, blockScales);
                return Nvfp4Static.Quantize(name, weight, dtype, unit.Rows, unit.Cols, blockScales, GlobalScale.ForWeight(groupAmax), packed).Warnings;
            case WeightAlgorithm.LocalHessian:
                var (hessian, fallback) = Hessian(unit);
                Nvfp4Search.Fp8ScaleSweep(name, weight, dtype, unit.Rows, unit.Cols, groupAmax, blockScales, hessian);
                var warnings = Nvfp4Static.Quantize(name, weight, dtype, unit.Rows, unit.Cols, blockScales, GlobalScale.ForWeight(groupAmax), packed).Warnings;
                return fallback is null ? warnings : [.. warnings, fallback];
            case WeightAlgorithm.Gptq when Solution(unit, groupAmax) is { } solution:
                solution.Packed.CopyTo(packed);
                solution.BlockScales.CopyTo(blockScales);
                return solution.Warnings;
            case WeightAlgorithm.Gptq:
                var max = Nvfp4.Quantize(name, weight, dtype, unit.Rows, unit.Cols, packed, blockScales, new Nvfp4Options { GlobalAmax = groupAmax, Order = order });
                return [.. max.Warnings, $"'{unit.OutputPrefix}' is outside the decoder layers GPTQ solves: quantized by max."];
            default:
                return Nvfp4.Quantize(name, weight, dtype, unit.Rows, unit.Cols, packed, blockScales, new Nvfp4Options { GlobalAmax = groupAmax, Order = order }).Warnings;
        }
    }

    /// <summary>
    /// The H blocks of the unit's input: a Linear's by module name, an expert projection's by
    /// <c>&lt;experts&gt;.&lt;e&gt;.gate_up_proj</c> (gate and up read the same input) or <c>.down_proj</c>. An expert
    /// that saw no token has none and falls back to the plain sweep; a Linear without them was calibrated for another plan.
    /// </summary>
    private (float[] Blocks, string? Fallback) Hessian(WeightUnit unit)
    {
        string key = unit.ExpertsContainer is { } experts
            ? $"{experts}.{unit.Expert}.{(unit.Role == "down_proj" ? "down_proj" : "gate_up_proj")}"
            : unit.Module.Name;
        if (_hessians.TryGetValue(key, out var h) && h.Tokens > 0)
        {
            if (h.Columns != unit.Cols)
                throw new ModelOptException(WeightCalibrationMissing, ErrorKind.InvalidData,
                    $"The Hessian blocks of '{key}' cover {h.Columns} input columns but '{unit.OutputPrefix}' has {unit.Cols}; run Invoke-Calibration again for this model and plan.", _modelPath);
            return (h.Blocks, null);
        }
        if (unit.Expert is not null)
            return ([], $"'{unit.OutputPrefix}' saw no calibration token, so it has no local Hessian: its block scales come from the plain MSE FP8 sweep.");
        throw new ModelOptException(WeightCalibrationMissing, ErrorKind.InvalidOperation,
            $"The calibration statistics have no Hessian blocks for '{key}' (they were collected for another plan): run Invoke-Calibration again after Set-QuantConfig.", _modelPath);
    }

    /// <summary>The unit's GPTQ solution, checked against the unit (shape, group amax), or null for an expert GPTQ left to max.</summary>
    private GptqSolution? Solution(WeightUnit unit, float groupAmax)
    {
        if (!_solutions.TryGetValue(unit.OutputPrefix, out var solution))
        {
            // Layerwise GPTQ solves the decoder layers; lm_head and units outside them keep max, as ModelOpt's does.
            if (unit.Module.Layer is null || unit.Module.Section != ModelSection.Text) return null;
            throw new ModelOptException(WeightCalibrationMissing, ErrorKind.InvalidOperation,
                $"No GPTQ solution for '{unit.OutputPrefix}' (the model was calibrated for another plan): run Invoke-Calibration again after Set-QuantConfig.", _modelPath);
        }
        if (solution.Rows != unit.Rows || solution.Cols != unit.Cols || BitConverter.SingleToInt32Bits(solution.GlobalAmax) != BitConverter.SingleToInt32Bits(groupAmax))
            throw new ModelOptException(WeightCalibrationMissing, ErrorKind.InvalidData,
                $"The GPTQ solution of '{unit.OutputPrefix}' is [{solution.Rows}, {solution.Cols}] with global amax {solution.GlobalAmax} but the plan " +
                $"writes [{unit.Rows}, {unit.Cols}] with group amax {groupAmax}: run Invoke-Calibration again after Set-QuantConfig.", _modelPath);
        return solution;
    }
}
