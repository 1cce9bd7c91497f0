using System.Diagnostics;
using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ModelOptPS.Bench;

/// <summary>
/// libtorch's CPU Linear (<c>F.linear</c>, what the forward engine runs) in float32 against bfloat16 at the shapes of a
/// Qwen3.5/3.6-MoE expert (hidden 2048, width 512: gate_up [2·512, 2048], down [2048, 512]) for the token counts an
/// expert gets per batch, and at a large square shape; plus what widening one expert's bf16 weights to float32 costs
/// (the price of streaming experts one by one in float32). GFLOP/s from wall and from this process's CPU time, so load
/// from other work shows as the gap between them.
/// </summary>
internal sealed class MatmulPrecisionBenchmark : IBenchmark
{
    public string Name => "matmul-precision";

    public string Description => "F.linear float32 vs bfloat16 at MoE expert shapes; bf16->fp32 widening of one expert";

    public void Run(BenchContext context)
    {
        TorchRuntime.EnsureLoaded();
        using var noGrad = no_grad();
        manual_seed(1);
        var shapes = new (string Name, long Tokens, long In, long Out)[]
        {
            ("expert gate_up, 128 tokens", 128, 2048, 1024),
            ("expert gate_up, 512 tokens", 512, 2048, 1024),
            ("expert gate_up, 2048 tokens", 2048, 2048, 1024),
            ("expert down, 512 tokens", 512, 512, 2048),
            ("square 2048", 2048, 2048, 2048),
        };
        int threads = get_num_threads();
        var rows = new List<string[]>();
        var results = new List<object>();
        foreach (int count in new[] { threads, 1 }.Distinct())
        {
            set_num_threads(count);
            foreach (var (name, tokens, inFeatures, outFeatures) in shapes)
            {
                using var scope = NewDisposeScope();
                Tensor x32 = randn(tokens, inFeatures), w32 = randn(outFeatures, inFeatures).mul(Scalars.Of(0.02));
                Tensor x16 = x32.to(ScalarType.BFloat16), w16 = w32.to(ScalarType.BFloat16);
                double flop = 2.0 * tokens * inFeatures * outFeatures;
                var fp32 = Time(() => F.linear(x32, w32).Dispose(), context.Quick);
                var bf16 = Time(() => F.linear(x16, w16).Dispose(), context.Quick);
                // How far bf16 (fp32 accumulation inside the GEMM) lands from fp32 on the same bf16-rounded inputs.
                Tensor reference = F.linear(x16.to(ScalarType.Float32), w16.to(ScalarType.Float32));
                double relativeError = F.linear(x16, w16).to(ScalarType.Float32).sub(reference).abs().max().item<float>() / reference.abs().max().item<float>();
                string key = $"{name}, {count} thread(s)";
                rows.Add([key, Gflops(flop, fp32.Wall), Gflops(flop, fp32.Cpu), Gflops(flop, bf16.Wall), Gflops(flop, bf16.Cpu),
                    $"{fp32.Cpu / bf16.Cpu:F2}x", $"{relativeError:E1}"]);
                results.Add(new
                {
                    shape = key, tokens, in_features = inFeatures, out_features = outFeatures, threads = count,
                    fp32_gflops_wall = flop / fp32.Wall / 1e9, fp32_gflops_cpu = flop / fp32.Cpu / 1e9,
                    bf16_gflops_wall = flop / bf16.Wall / 1e9, bf16_gflops_cpu = flop / bf16.Cpu / 1e9,
                    bf16_speedup_cpu = fp32.Cpu / bf16.Cpu, bf16_max_relative_error = relativeError,
                });
            }
        }
        set_num_threads(threads);
        BenchContext.PrintTable(["F.linear", "fp32 GFLOP/s wall", "fp32 GFLOP/s cpu", "bf16 GFLOP/s wall", "bf16 GFLOP/s cpu", "bf16 speedup (cpu)", "bf16 max rel err"], rows);

        // Streaming float32 experts would widen each expert's bf16 weights (3 x 512 x 2048 values) once per batch it runs in.
        using var widenScope = NewDisposeScope();
        Tensor expert = randn(3 * 512, 2048).to(ScalarType.BFloat16);
        var widen = Time(() => expert.to(ScalarType.Float32).Dispose(), context.Quick);
        Console.WriteLine($"widening one expert's weights bf16 -> fp32 (3 x 512 x 2048): {widen.Wall * 1e3:F2} ms wall, {widen.Cpu * 1e3:F2} ms cpu");

        string load = File.ReadAllText("/proc/loadavg").Trim();
        Console.WriteLine($"torch threads {threads}, load average {load}");
        Console.WriteLine($"wrote {context.WriteJson(Name, new { torch_threads = threads, load_average = load, results, widen_expert_ms_wall = widen.Wall * 1e3, widen_expert_ms_cpu = widen.Cpu * 1e3 })}");
    }

    private static string Gflops(double flop, double seconds) => $"{flop / seconds / 1e9:F1}";

    /// <summary>Median wall seconds and mean process CPU seconds per call, after a warm-up call.</summary>
    private static (double Wall, double Cpu) Time(Action action, bool quick)
    {
        action();
        var process = Process.GetCurrentProcess();
        int runs = 0;
        var walls = new List<double>();
        process.Refresh();
        var cpuStart = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        while (runs < 3 || clock.Elapsed.TotalSeconds < (quick ? 0.2 : 1.0))
        {
            long start = Stopwatch.GetTimestamp();
            action();
            walls.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            runs++;
        }
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuStart).TotalSeconds / runs;
        walls.Sort();
        return (walls[walls.Count / 2], cpu);
    }
}
