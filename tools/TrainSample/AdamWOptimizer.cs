using ModelOptPS.Engine.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample;

/// <summary>
/// AdamW computed operation for operation as TorchSharp 0.107's <c>Modules.AdamW.step</c> does (amsgrad and maximize
/// off), so a run trains bit-identically to one with TorchSharp's optimizer. TorchSharp's step turns its numbers into
/// Scalars inside each call and lets the GC free them mid-operation; here every number comes from
/// <see cref="Scalars"/> and is held across the call.
/// </summary>
internal sealed class AdamWOptimizer : IDisposable
{
    private readonly List<(Parameter Parameter, double WeightDecay, Moments Moments)> _parameters = [];
    private readonly double _beta1, _beta2, _eps;

    public AdamWOptimizer(IEnumerable<(IEnumerable<Parameter> Parameters, double WeightDecay)> groups,
        double learningRate, double beta1, double beta2, double eps)
    {
        (LearningRate, _beta1, _beta2, _eps) = (learningRate, beta1, beta2, eps);
        foreach (var (parameters, weightDecay) in groups)
        foreach (var parameter in parameters)
            _parameters.Add((parameter, weightDecay, new Moments(zeros_like(parameter), zeros_like(parameter))));
    }

    public double LearningRate { get; set; }

    /// <summary>Zeroes each gradient in place, as TorchSharp's <c>zero_grad</c> does.</summary>
    public void ZeroGrad()
    {
        foreach (var (parameter, _, _) in _parameters)
        {
            using Tensor? grad = parameter.grad;
            grad?.zero_();
        }
    }

    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        double lr = LearningRate;
        foreach (var (parameter, weightDecay, moments) in _parameters)
        {
            Tensor? grad = parameter.grad;
            if (grad is null) continue;
            // Counted per parameter, as TorchSharp does: one that has had no gradient yet has taken no step.
            moments.Steps++;
            using Scalar decay = Scalars.Temporary(1 - lr * weightDecay);
            parameter.mul_(decay);
            double biasCorrection1 = 1 - Math.Pow(_beta1, moments.Steps);
            double biasCorrection2 = 1 - Math.Pow(_beta2, moments.Steps);
            using Scalar sqrtBiasCorrection2 = Scalars.Temporary(Math.Sqrt(biasCorrection2));
            using Scalar negativeStepSize = Scalars.Temporary(-(lr / biasCorrection1));
            moments.Mean.mul_(Scalars.Of(_beta1)).add_(grad, Scalars.Of(1 - _beta1));
            moments.Variance.mul_(Scalars.Of(_beta2)).addcmul_(grad, grad, Scalars.Of(1 - _beta2));
            Tensor denominator = moments.Variance.sqrt().div(sqrtBiasCorrection2).add_(Scalars.Of(_eps), Scalars.One);
            parameter.addcdiv_(moments.Mean, denominator, negativeStepSize);
        }
    }

    public void Dispose()
    {
        foreach (var (_, _, moments) in _parameters)
        {
            moments.Mean.Dispose();
            moments.Variance.Dispose();
        }
    }

    /// <summary>One parameter's step count and running gradient moments (<c>exp_avg</c>, <c>exp_avg_sq</c>).</summary>
    private sealed record Moments(Tensor Mean, Tensor Variance)
    {
        public long Steps { get; set; }
    }
}
