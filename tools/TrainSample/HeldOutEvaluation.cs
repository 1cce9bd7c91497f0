using ModelOptPS.TrainSample.Model;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample;

/// <summary>Mean next-token loss over a split's windows, and how the routers spread those tokens over the experts.</summary>
internal sealed record EvaluationResult(double Loss, long Tokens, double[][] ExpertShare)
{
    public double Perplexity => Math.Exp(Loss);
}

internal static class HeldOutEvaluation
{
    public static EvaluationResult Run(Qwen3MoeForCausalLM model, IReadOnlyList<long[]> windows, SampleShape shape, RotaryTable rope, int batchSize)
    {
        model.eval();
        using var noGrad = no_grad();
        double lossSum = 0;
        long tokens = 0;
        var choices = new long[shape.Layers][];
        for (int l = 0; l < shape.Layers; l++) choices[l] = new long[shape.Experts];
        for (int start = 0; start < windows.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var (inputs, targets) = Batches.Split(windows.Skip(start).Take(batchSize).ToArray());
            var (logits, routerLogits) = model.Forward(inputs, rope);
            lossSum += nn.functional.cross_entropy(logits.reshape(-1, shape.VocabSize), targets.reshape(-1), reduction: nn.Reduction.Sum).item<float>();
            tokens += targets.numel();
            for (int l = 0; l < shape.Layers; l++)
            {
                long[] counts = routerLogits[l].topk(shape.TopK, dim: -1).indexes.reshape(-1).bincount(null, shape.Experts).data<long>().ToArray();
                for (int e = 0; e < shape.Experts; e++) choices[l][e] += counts[e];
            }
        }
        model.train();
        var share = choices.Select(c => c.Select(n => (double)n / c.Sum()).ToArray()).ToArray();
        return new EvaluationResult(lossSum / tokens, tokens, share);
    }
}
