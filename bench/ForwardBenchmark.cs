using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Bench;

/// <summary>
/// The forward engine (issue 6) on generated Qwen3-MoE checkpoints: (1) layer-by-layer throughput in tokens/s, bare,
/// with a calibration-like amax observer, and with all-experts observation; (2) the grouped-by-expert dispatch against a
/// per-token loop over the same MoE layer and data; (3) peak memory on a checkpoint several layers large: materialised
/// weights and anonymous RSS against the model's float32 size.
/// </summary>
internal sealed class ForwardBenchmark : IBenchmark
{
    public string Name => "forward";

    public string Description => "layer-by-layer forward of generated Qwen3-MoE: tokens/s, grouped vs per-token experts, peak memory";

    public void Run(BenchContext context)
    {
        TorchRuntime.EnsureLoaded();
        string root = Path.Combine(Path.GetTempPath(), $"modeloptps-bench-forward-{Environment.ProcessId}");
        try
        {
            // Memory first: freed heap is not always returned to the OS, so later peaks would hide behind earlier ones.
            var memory = Memory(context, Path.Combine(root, "large"));
            var throughput = Throughput(context, Path.Combine(root, "small"));
            var dispatch = Dispatch(context, Path.Combine(root, "small"));
            // The load average tells whether other work shared the cores (libtorch's thread pool suffers badly when it does).
            string load = File.ReadAllText("/proc/loadavg").Trim();
            Console.WriteLine($"torch threads {get_num_threads()}, load average {load}");
            Console.WriteLine($"wrote {context.WriteJson(Name, new { torch_threads = get_num_threads(), load_average = load, throughput, dispatch, memory })}");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static readonly Dims Small = new() { Hidden = 512, Layers = 4, Experts = 16, ExpertIntermediate = 256 };

    private static object Throughput(BenchContext context, string folder)
    {
        TinyCheckpoints.Write("qwen3_moe", folder, Small);
        using var model = ModelImporter.Import(folder);
        var sequences = Sequences(context.Quick ? 4 : 16, context.Quick ? 128 : 256, model.VocabSize ?? 256);
        long tokens = sequences.Sum(s => s.LongLength);
        Console.WriteLine($"model: qwen3_moe {Small}; {sequences.Count} sequences x {sequences[0].Length} tokens");

        var rows = new List<string[]>();
        var results = new Dictionary<string, object>();
        void Measure(string name, RunnerOptions options, Func<IActivationObserver?> observer)
        {
            using var runner = ModelRunner.Create(model, options);
            var timing = BenchContext.Measure(() => runner.RunLayerwise(sequences, observer()), 1, context.Quick ? 1 : 3, 0);
            string key = $"{name}, {get_num_threads()} thread(s)";
            rows.Add([key, $"{timing.MedianSeconds:F2}", $"{timing.BestSeconds:F2}", $"{tokens / timing.MedianSeconds:F0}"]);
            results[key] = new { tokens, median_seconds = timing.MedianSeconds, best_seconds = timing.BestSeconds, tokens_per_second = tokens / timing.MedianSeconds };
        }

        // Also on one thread: on a machine shared with other work, libtorch's pool waits at a barrier in every op and a
        // multi-threaded run can be many times slower than a single-threaded one.
        int threads = get_num_threads();
        foreach (int count in new[] { threads, 1 }.Distinct())
        {
            set_num_threads(count);
            Measure("forward, no observer", new RunnerOptions(), () => null);
            Measure("forward + amax observer", new RunnerOptions(), () => new AmaxObserver());
            Measure("all experts + amax observer", new RunnerOptions { AllExperts = true }, () => new AmaxObserver());
        }
        set_num_threads(threads);
        BenchContext.PrintTable(["run", "median s", "best s", "tokens/s"], rows);
        return results;
    }

    /// <summary>Layer 0's MoE block on the same normalised hidden states, grouped by expert vs one token at a time.</summary>
    private static object Dispatch(BenchContext context, string folder)
    {
        using var model = ModelImporter.Import(folder);
        var blueprint = (MoeBlueprint)ModelBlueprint.Plan(model).Layers[0].FeedForward;
        var loader = new WeightLoader(model.Checkpoint, ScalarType.Float32, CPU, null);
        using var weights = new MaterializedWeights(new WeightMemory());
        var block = (MoeBlock)blueprint.Build(loader, weights);
        var forward = new ForwardContext(model.Path, null, null, false);

        int tokens = context.Quick ? 256 : 2048;
        using var scope = NewDisposeScope();
        manual_seed(7);
        Tensor x = randn(tokens, Small.Hidden);
        Tensor grouped = block.Forward(forward, x);
        Tensor perToken = PerTokenMoe(forward, block.Weights, x);
        double difference = grouped.sub(perToken).abs().max().item<float>();

        var groupedTime = BenchContext.Measure(() => { using var s = NewDisposeScope(); block.Forward(forward, x); }, 1, 5, context.Quick ? 0.2 : 2);
        var perTokenTime = BenchContext.Measure(() => { using var s = NewDisposeScope(); PerTokenMoe(forward, block.Weights, x); }, 1, context.Quick ? 1 : 3, 0);
        double ratio = perTokenTime.MedianSeconds / groupedTime.MedianSeconds;
        BenchContext.PrintTable(["MoE dispatch", "median ms", "tokens/s"],
        [
            ["grouped by expert", $"{groupedTime.MedianSeconds * 1e3:F1}", $"{tokens / groupedTime.MedianSeconds:F0}"],
            ["per-token loop", $"{perTokenTime.MedianSeconds * 1e3:F1}", $"{tokens / perTokenTime.MedianSeconds:F0}"],
        ]);
        Console.WriteLine($"grouped is {ratio:F1}x faster; outputs differ by at most {difference:E1}");
        return new
        {
            tokens, experts = Small.Experts, top_k = Small.TopK, grouped_median_seconds = groupedTime.MedianSeconds,
            per_token_median_seconds = perTokenTime.MedianSeconds, per_token_over_grouped = ratio, max_output_difference = difference,
        };
    }

    /// <summary>The dispatch the engine avoids: route, then for every token run its k experts on that one row.</summary>
    private static Tensor PerTokenMoe(ForwardContext forward, MoeWeights moe, Tensor x)
    {
        var (routing, indices) = TopKRouter.Route(forward.Linear(moe.Router, x), moe.TopK, moe.Renormalize);
        long[] experts = indices.data<long>().ToArray();
        float[] weights = routing.data<float>().ToArray();
        Tensor output = zeros_like(x);
        for (long t = 0; t < x.shape[0]; t++)
        {
            using var scope = NewDisposeScope();
            Tensor row = x.narrow(0, t, 1);
            for (int j = 0; j < moe.TopK; j++)
            {
                long slot = t * moe.TopK + j;
                using Scalar weight = Scalars.Temporary(weights[slot]);
                output.narrow(0, t, 1).add_(GroupedExperts.Expert(forward, moe.Experts, (int)experts[slot], row).mul(weight), Scalars.One);
            }
        }
        return output;
    }

    /// <summary>A checkpoint of many layers: materialised weights must peak at one layer, not the model.</summary>
    private static object Memory(BenchContext context, string folder)
    {
        var dims = new Dims
        {
            Hidden = 1024, Layers = context.Quick ? 2 : 8, Heads = 16, KvHeads = 4, HeadDim = 64, Experts = 32, TopK = 4,
            ExpertIntermediate = 512, Vocab = 32000,
        };
        TinyCheckpoints.Write("qwen3_moe", folder, dims, maxShardBytes: 1_000_000_000);
        using var model = ModelImporter.Import(folder);
        var sequences = Sequences(4, 256, dims.Vocab);
        long modelFloat32 = model.Checkpoint.Tensors.Values.Sum(t => t.Info.ElementCount * 4);
        using var runner = ModelRunner.Create(model);
        GC.Collect();
        var before = ProcessMemory.Read();
        var peak = ProcessMemory.Sample(() => runner.RunLayerwise(sequences, new AmaxObserver()));
        var result = new
        {
            layers = dims.Layers, checkpoint_bytes = model.SizeOnDisk, model_float32_bytes = modelFloat32,
            peak_materialized_weight_bytes = runner.WeightMemory.PeakBytes, anon_before_bytes = before.Anon,
            peak_anon_bytes = peak.AnonBytes, peak_anon_growth_bytes = peak.AnonBytes - before.Anon, peak_file_backed_bytes = peak.FileBytes,
        };
        BenchContext.PrintTable(["checkpoint (bf16)", "model as fp32", "peak weights", "peak anon growth", "peak mapped"],
        [[
            $"{model.SizeOnDisk / 1e6:F0} MB", $"{modelFloat32 / 1e6:F0} MB", $"{runner.WeightMemory.PeakBytes / 1e6:F0} MB",
            $"{(peak.AnonBytes - before.Anon) / 1e6:F0} MB", $"{peak.FileBytes / 1e6:F0} MB",
        ]]);
        return result;
    }

    internal static List<long[]> Sequences(int count, int length, int vocabulary)
    {
        var random = new Random(20260806);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => (long)random.Next(vocabulary)).ToArray()).ToList();
    }

    /// <summary>What a max calibrator does per input: a running max of |x| per name.</summary>
    private sealed class AmaxObserver : IActivationObserver
    {
        private readonly Dictionary<string, float> _amax = [];

        public void ObserveInput(string inputQuantizerName, Tensor input)
        {
            using var amax = input.abs().max();
            float value = amax.item<float>();
            _amax[inputQuantizerName] = Math.Max(value, _amax.GetValueOrDefault(inputQuantizerName));
        }

        public void ObserveRouting(string expertsContainer, Tensor expertIndices)
        {
        }
    }
}
