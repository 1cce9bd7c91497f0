using System.Diagnostics;
using ModelOptPS.Engine.Torch;
using ModelOptPS.TrainSample.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample;

/// <summary>Train losses as the run went, for training.json.</summary>
internal sealed record TrainingLog(double FinalTrainLoss, double FinalAuxLoss, int Epochs, List<double[]> Curve, List<double[]> HeldOutCurve, TimeSpan Elapsed);

/// <summary>
/// AdamW on float32 master weights: next-token cross-entropy plus router_aux_loss_coef × the load-balancing loss
/// (as Qwen3MoeForCausalLM computes its loss with output_router_logits), warm-up and cosine learning rate, global
/// gradient-norm clipping, batches from a seeded schedule.
/// </summary>
internal sealed class Trainer(Qwen3MoeForCausalLM model, SampleShape shape, TrainingSettings settings, RotaryTable rope)
{
    public TrainingLog Run(TokenStream train, IReadOnlyList<long[]> heldOut)
    {
        var clock = Stopwatch.StartNew();
        using var optimizer = CreateOptimizer();
        var schedule = new BatchSchedule(train, settings.SequenceLength, settings.BatchSize, settings.Seed);
        var curve = new List<double[]>();
        var heldOutCurve = new List<double[]>();
        double windowLoss = 0, windowAux = 0, lastLoss = 0, lastAux = 0;
        model.train();
        for (int step = 0; step < settings.Steps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = settings.LearningRate(step);
            optimizer.LearningRate = lr;
            var (inputs, targets) = Batches.Split(schedule.Next());
            var (logits, routerLogits) = model.Forward(inputs, rope);
            Tensor crossEntropy = nn.functional.cross_entropy(logits.reshape(-1, shape.VocabSize), targets.reshape(-1));
            Tensor aux = LoadBalancingLoss.Compute(routerLogits, shape.Experts, shape.TopK);
            Tensor loss = crossEntropy.add(aux.mul(Scalars.Of(shape.RouterAuxLossCoef)), Scalars.One);
            optimizer.ZeroGrad();
            loss.backward();
            double gradientNorm = nn.utils.clip_grad_norm_(model.parameters(), settings.GradientClipNorm);
            optimizer.Step();

            windowLoss += crossEntropy.item<float>();
            windowAux += aux.item<float>();
            if ((step + 1) % settings.LogEvery == 0)
            {
                (lastLoss, lastAux) = (windowLoss / settings.LogEvery, windowAux / settings.LogEvery);
                curve.Add([step + 1, Math.Round(lastLoss, 4)]);
                Console.WriteLine($"step {step + 1,5}/{settings.Steps}  epoch {schedule.Epoch}  loss {lastLoss:F4}  aux {lastAux:F3}  " +
                                  $"lr {lr:E2}  grad-norm {gradientNorm:F2}  {clock.Elapsed.TotalSeconds:F0}s");
                (windowLoss, windowAux) = (0, 0);
            }
            if ((step + 1) % settings.EvaluateEvery == 0 && step + 1 < settings.Steps)
            {
                var eval = HeldOutEvaluation.Run(model, heldOut, shape, rope, settings.BatchSize);
                heldOutCurve.Add([step + 1, Math.Round(eval.Loss, 4)]);
                Console.WriteLine($"      held-out loss {eval.Loss:F4}  perplexity {eval.Perplexity:F2}");
            }
        }
        return new TrainingLog(lastLoss, lastAux, schedule.Epoch + 1, curve, heldOutCurve, clock.Elapsed);
    }

    /// <summary>Weight decay on the matrices (embeddings, projections, routers, lm_head), none on the norm scales.</summary>
    private AdamWOptimizer CreateOptimizer()
    {
        var parameters = model.named_parameters().ToList();
        var decayed = parameters.Where(p => p.parameter.dim() >= 2).Select(p => p.parameter);
        var plain = parameters.Where(p => p.parameter.dim() < 2).Select(p => p.parameter);
        return new AdamWOptimizer([(decayed, settings.WeightDecay), (plain, 0)],
            settings.PeakLearningRate, settings.Beta1, settings.Beta2, settings.AdamEpsilon);
    }
}
