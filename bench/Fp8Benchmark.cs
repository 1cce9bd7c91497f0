using System.Runtime.InteropServices;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Bench;

/// <summary>
/// FP8 per-tensor quantization of the same BF16 weight as <see cref="Nvfp4Benchmark"/>: the engine's kernel, ModelOpt's
/// two libtorch operations (divide by the 0-d scale, cast to float8_e4m3fn: the peer), and a plain copy of the bytes.
/// </summary>
internal sealed class Fp8Benchmark : IBenchmark
{
    public string Name => "fp8";

    public string Description => "FP8 per-tensor quantize of a BF16 weight: SIMD kernel vs libtorch ops (div + float8 cast) vs memcpy";

    public void Run(BenchContext context)
    {
        int rows = context.Quick ? 2048 : 8192, cols = 8192;
        long elements = (long)rows * cols;
        long inputBytes = elements * 2;
        double minSeconds = context.Quick ? 0.5 : 6.0;

        Console.WriteLine($"data: [{rows}, {cols}] bf16 = {elements / 1e6:F1} M elements ({inputBytes / 1048576.0:F0} MiB), seed 20240917");
        byte[] source = Nvfp4Benchmark.WeightLikeBf16(rows, cols, seed: 20240917);
        var codes = new byte[elements];
        var oneThreadCodes = new byte[elements];
        float amax = Amax.ComputeFinite("bench", source, DType.BF16);
        float weightScale = Fp8.WeightScale(amax);
        float divisor = Fp8.Divisor(weightScale, DType.BF16, GlobalScaleOrder.Cuda);
        var givenAmax = new Fp8Options { Amax = amax };
        var destination = new byte[source.Length];
        Timing[] timings = BenchContext.MeasureInterleaved(
        [
            () => Fp8.Quantize("bench", source, DType.BF16, rows, cols, codes),
            () => Fp8.Quantize("bench", source, DType.BF16, rows, cols, codes, givenAmax),
            () => Fp8Kernel.QuantizeSingleThreaded(source, DType.BF16, divisor, oneThreadCodes, KernelPath.Auto),
            () => source.AsSpan().CopyTo(destination),
            () => Nvfp4Benchmark.ParallelCopy(source, destination),
        ], warmup: 2, minRounds: 10, minSeconds);
        (Timing kernel, Timing kernelGiven, Timing kernelOneThread, Timing copyOne, Timing copyAll) =
            (timings[0], timings[1], timings[2], timings[3], timings[4]);
        Fp8Result result = Fp8.Quantize("bench", source, DType.BF16, rows, cols, codes);
        bool oneThreadMatches = oneThreadCodes.AsSpan().SequenceEqual(codes);

        // The libtorch peer: ModelOpt's `(weight / weight_scale).to(float8_e4m3fn)` on the same BF16 tensor, on the CPU,
        // where it runs in the CPU order; its bytes are compared with the kernel's CPU-order output.
        TorchRuntime.EnsureLoaded();
        int torchThreads = get_num_threads();
        bool peerMatches;
        Timing peer;
        using (NewDisposeScope())
        {
            Tensor weight = Nvfp4Torch.FromRawBytes(source, ScalarType.BFloat16, rows, cols);
            Tensor scale = tensor(weightScale);
            peer = BenchContext.Measure(
                () =>
                {
                    using DisposeScope scope = NewDisposeScope();
                    (weight / scale).to(TorchFloat8.Float8E4M3Fn);
                },
                warmup: 1, minRuns: context.Quick ? 2 : 5, minSeconds: 0);
            byte[] peerCodes = (weight / scale).to(TorchFloat8.Float8E4M3Fn).bytes.ToArray();
            var cpuOrder = new byte[elements];
            Fp8.Quantize("bench", source, DType.BF16, rows, cols, cpuOrder, new Fp8Options { Order = GlobalScaleOrder.Cpu });
            peerMatches = peerCodes.AsSpan().SequenceEqual(cpuOrder);
        }

        double Bandwidth(Timing t) => inputBytes / t.MedianSeconds;
        Timing copy = copyAll.MedianSeconds <= copyOne.MedianSeconds ? copyAll : copyOne;
        double kernelOverPeer = peer.MedianSeconds / kernel.MedianSeconds;
        double kernelOverCopy = Bandwidth(kernel) / Bandwidth(copy);
        double givenOverCopy = Bandwidth(kernelGiven) / Bandwidth(copy);

        var table = new List<string[]>();
        void Row(string name, Timing t) => table.Add(
        [
            name, $"{t.MedianSeconds * 1e3:F1}", $"{t.BestSeconds * 1e3:F1}", $"{t.Runs}", $"{elements / t.MedianSeconds / 1e9:F3}", $"{Bandwidth(t) / 1e9:F2}",
            $"{Bandwidth(t) / Bandwidth(copy):F2}",
        ]);
        Row("kernel (amax + quantize)", kernel);
        Row("kernel, amax given", kernelGiven);
        Row("kernel, 1 thread, amax given", kernelOneThread);
        Row($"libtorch div + cast ({torchThreads} thr)", peer);
        Row("memcpy, 1 thread", copyOne);
        Row($"memcpy, {Environment.ProcessorCount} threads", copyAll);
        BenchContext.PrintTable(["measurement", "median ms", "best ms", "runs", "G elem/s", "GB/s in", "x memcpy"], table);
        Console.WriteLine();
        Console.WriteLine($"kernel / peer = {kernelOverPeer:F1}x   kernel / copy = {kernelOverCopy:F2}x (amax given: {givenOverCopy:F2}x)");
        Console.WriteLine($"peer output identical to kernel output (CPU order): {peerMatches}; one-thread output identical: {oneThreadMatches}");

        var json = new Dictionary<string, object>
        {
            ["benchmark"] = Name,
            ["quick"] = context.Quick,
            ["machine"] = Nvfp4Benchmark.Machine(torchThreads),
            ["data"] = Nvfp4Benchmark.Data(rows, cols, amax, "weight_scale", result.WeightScale),
            ["results"] = new Dictionary<string, object>
            {
                ["kernel"] = Nvfp4Benchmark.Entry(kernel, elements, inputBytes),
                ["kernel_amax_given"] = Nvfp4Benchmark.Entry(kernelGiven, elements, inputBytes),
                ["kernel_one_thread"] = Nvfp4Benchmark.Entry(kernelOneThread, elements, inputBytes),
                ["libtorch_peer"] = Nvfp4Benchmark.Entry(peer, elements, inputBytes),
                ["memcpy_one_thread"] = Nvfp4Benchmark.Entry(copyOne, elements, inputBytes),
                ["memcpy_all_threads"] = Nvfp4Benchmark.Entry(copyAll, elements, inputBytes),
            },
            ["ratios"] = new Dictionary<string, object>
            {
                ["kernel_over_peer"] = kernelOverPeer,
                ["kernel_over_copy"] = kernelOverCopy,
                ["kernel_amax_given_over_copy"] = givenOverCopy,
                ["copy_used"] = ReferenceEquals(copy, copyAll) ? "memcpy_all_threads" : "memcpy_one_thread",
            },
            ["peer_output_identical"] = peerMatches,
            ["one_thread_output_identical"] = oneThreadMatches,
        };
        Console.WriteLine($"wrote {context.WriteJson(Name, json)}");
    }
}
