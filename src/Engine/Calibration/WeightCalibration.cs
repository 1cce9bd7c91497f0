using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The weight half of calibration, after the statistics pass: for a GPTQ plan, layerwise GPTQ with the plan's
/// settings, with the plan's activation and KV-cache fake quantization in every pass (ModelOpt keeps the input
/// quantizers enabled while GPTQ collects its Hessians), so W4A4 plans need the input amaxes of
/// <see cref="HFModel.Statistics"/> first. Other algorithms need nothing here (local Hessian's H blocks come with the
/// statistics).
/// </summary>
public static class WeightCalibration
{
    /// <summary>GPTQ's solutions for <paramref name="model"/>'s plan, or null when its algorithm is not GPTQ.</summary>
    public static IReadOnlyDictionary<string, GptqSolution>? Run(HFModel model, CalibrationOptions options,
        IProgress<RunnerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = model.RequirePlan();
        if (plan.WeightAlgorithm != WeightAlgorithm.Gptq) return null;
        var gptq = new GptqOptions { PercDamp = plan.Algorithm.PercDamp, BlockSize = plan.Algorithm.GptqBlockSize };
        var planned = new PlannedQuantization(model, plan, cancellationToken);
        ActivationTransform activations = (name, x) => planned.Activation(name)?.FakeQuantize(x) ?? x;
        return GptqCalibration.Run(model, options, gptq, progress, cancellationToken, activations);
    }
}
