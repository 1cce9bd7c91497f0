using static TorchSharp.torch;

namespace ModelOptPS.TrainSample;

internal static class Batches
{
    /// <summary>Windows of T+1 tokens → inputs [B, T] and next-token targets [B, T] (transformers' shifted labels).</summary>
    public static (Tensor Inputs, Tensor Targets) Split(long[][] windows)
    {
        long length = windows[0].Length - 1;
        Tensor all = tensor(windows.SelectMany(w => w).ToArray(), [windows.Length, length + 1]);
        return (all.narrow(1, 0, length), all.narrow(1, 1, length));
    }
}
