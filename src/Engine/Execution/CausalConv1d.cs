using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Gated DeltaNet's depthwise causal convolution with SiLU (architectures.md §4.3 step 2):
/// <c>c'[t, ch] = silu(Σ_j W[ch, 0, j] · c[t − (K−1) + j, ch])</c> with zero left padding and no bias.
/// </summary>
internal static class CausalConv1d
{
    /// <summary>x [T, C], weight [C, 1, K] → [T, C].</summary>
    public static Tensor Apply(Tensor x, Tensor weight)
    {
        long length = x.shape[0], channels = x.shape[1], kernel = weight.shape[2];
        Tensor input = x.transpose(0, 1).unsqueeze(0);
        Tensor output = nn.functional.conv1d(input, weight, null, stride: 1, padding: kernel - 1, dilation: 1, groups: channels);
        return output.narrow(-1, 0, length).squeeze(0).transpose(0, 1).silu();
    }
}
