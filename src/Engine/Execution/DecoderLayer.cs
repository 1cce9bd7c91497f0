using ModelOptPS.Engine.Torch;
using ModelOptPS.Engine.Model;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// One pre-norm decoder layer (architectures.md §1.1): <c>h = x + Mixer(Norm1(x))</c>, <c>y = h + FFN(Norm2(h))</c>.
/// The mixer runs per sequence; the feed-forward runs on the tokens of all sequences together, in chunks, so experts
/// see large gathered batches. The hidden state is updated in place.
/// </summary>
internal sealed class DecoderLayer(Tensor inputNorm, Tensor postNorm, NormStyle style, double eps, ISequenceMixer mixer, IFeedForward feedForward)
{
    public void Forward(ForwardContext context, Tensor hidden, SequenceBatch batch, int tokensPerChunk, CancellationToken cancellationToken)
    {
        for (int s = 0; s < batch.Count; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            Tensor x = hidden.narrow(0, batch.Offsets[s], batch.Lengths[s]);
            x.add_(mixer.Forward(context, RmsNorm.Apply(x, inputNorm, eps, style)), Scalars.One);
        }
        for (long start = 0; start < batch.TokenCount; start += tokensPerChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            Tensor h = hidden.narrow(0, start, Math.Min(tokensPerChunk, batch.TokenCount - start));
            h.add_(feedForward.Forward(context, RmsNorm.Apply(h, postNorm, eps, style)), Scalars.One);
        }
    }
}
