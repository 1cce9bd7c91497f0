namespace ModelOptPS.Engine.Torch;

/// <summary>What <see cref="TorchRuntime.GetInfo"/> reports; reading it never loads libtorch.</summary>
/// <param name="TorchSharpVersion">Version of the managed TorchSharp assembly, e.g. 0.107.0.</param>
/// <param name="LibTorchVersion">libtorch version TorchSharp was built for; null until libtorch is loaded.</param>
/// <param name="IsLoaded">Whether <see cref="TorchRuntime.EnsureLoaded"/> has loaded libtorch in this process.</param>
/// <param name="Threads">libtorch's intra-op thread count; null until loaded.</param>
/// <param name="NativeDirectory">The folder libLibTorchSharp.so is (or would be) loaded from; null if none has it.</param>
/// <param name="StdCxxShimUsed">Whether the build patched libLibTorchSharp.so to use the libstdc++ shim on this system.</param>
public sealed record TorchRuntimeInfo(
    string TorchSharpVersion,
    string? LibTorchVersion,
    bool IsLoaded,
    int? Threads,
    string? NativeDirectory,
    bool StdCxxShimUsed);
