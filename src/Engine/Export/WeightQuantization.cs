using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The one place that turns a planned NVFP4 weight unit into its codes, block scales and <c>weight_scale_2</c> by the
/// plan's algorithm: the export writes these bytes and quality measurement dequantizes them, so what is measured is
/// what is exported. The global amax is always the unit's group max (<see cref="ScaleGroups"/>), unified before any
/// search, so the shards an engine merges (q/k/v, gate/up, …) share <c>weight_scale_2</c>.
/// </summary>
public sealed class WeightQuantization
{
    private readonly WeightAlgorithm _algorithm;

    private WeightQuantization(WeightAlgorithm algorithm)
    {
        _algorithm = algorithm;
    }

    /// <summary>The quantization of <paramref name="plan"/>'s NVFP4 weights for <paramref name="model"/>.</summary>
    public static WeightQuantization For(HFModel model, QuantPlan plan) => new(plan.Algorithm.Weights);

    /// <summary>The <c>weight_scale_2</c> the unit is written with.</summary>
    public float WeightScale2(WeightUnit unit, float groupAmax, GlobalScaleOrder order) => GlobalScale.ForWeight(groupAmax, order);

    /// <summary>
    /// Quantizes <paramref name="weight"/> (the unit's values, in <paramref name="dtype"/>) into <paramref name="packed"/>
    /// [rows, cols/2] and <paramref name="blockScales"/> [rows, cols/16]; returns the warnings (zero tensors, saturation,
    /// fallbacks).
    /// </summary>
    public IReadOnlyList<string> Quantize(WeightUnit unit, ReadOnlySpan<byte> weight, DType dtype, float groupAmax, GlobalScaleOrder order,
        Span<byte> packed, Span<byte> blockScales)
    {
        string name = unit.OutputPrefix + ".weight";
        var result = Nvfp4.Quantize(name, weight, dtype, unit.Rows, unit.Cols, packed, blockScales,
            new Nvfp4Options { GlobalAmax = groupAmax, Order = order });
        return result.Warnings;
    }
}
