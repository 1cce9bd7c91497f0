using TorchSharp;

namespace ModelOptPS.Engine.Torch;

/// <summary>libtorch's intra-op thread count.</summary>
internal static class TorchThreads
{
    /// <summary>
    /// libtorch sizes its pool from the machine's cores, which oversubscribes a process limited to fewer CPUs (affinity,
    /// container quota). Cap it at what .NET sees as available, unless the user chose a count with OMP_NUM_THREADS.
    /// </summary>
    internal static void Configure()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")))
            return;
        int threads = Math.Clamp(torch.get_num_threads(), 1, Environment.ProcessorCount);
        torch.set_num_threads(threads);
    }
}
