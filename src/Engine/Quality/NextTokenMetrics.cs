using static TorchSharp.torch;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// Accumulates next-token statistics of a reference and a quantized model on the same tokens: both negative
/// log-likelihoods (for perplexity), KL(reference || quantized) of the full next-token distributions, and how often
/// both pick the same most likely token. All in float64 sums.
/// </summary>
internal sealed class NextTokenMetrics
{
    private double _referenceNll, _quantizedNll, _kl;
    private long _agree;

    public long Positions { get; private set; }

    /// <summary>Adds one sequence: logits [T, V] of both models for tokens[0..T); position t predicts tokens[t+1].</summary>
    public void Add(long[] tokens, Tensor referenceLogits, Tensor quantizedLogits)
    {
        int predicted = tokens.Length - 1;
        if (predicted <= 0) return;
        using var scope = NewDisposeScope();
        var p = nn.functional.log_softmax(referenceLogits.narrow(0, 0, predicted).to(ScalarType.Float64), 1);
        var q = nn.functional.log_softmax(quantizedLogits.narrow(0, 0, predicted).to(ScalarType.Float64), 1);
        var targets = tensor(tokens[1..], dtype: ScalarType.Int64).unsqueeze(1);
        _referenceNll -= p.gather(1, targets).sum().item<double>();
        _quantizedNll -= q.gather(1, targets).sum().item<double>();
        _kl += p.exp().mul(p.sub(q)).sum().item<double>();
        _agree += p.argmax(1).eq(q.argmax(1)).sum().item<long>();
        Positions += predicted;
    }

    public double ReferencePerplexity => Math.Exp(_referenceNll / Positions);

    public double QuantizedPerplexity => Math.Exp(_quantizedNll / Positions);

    public double MeanKl => _kl / Positions;

    public double Top1Agreement => (double)_agree / Positions;
}
