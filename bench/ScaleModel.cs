using System.Diagnostics;
using System.Text.Json.Nodes;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Bench;

/// <summary>
/// A checkpoint with the real Qwen3.6-35B-A3B (Qwen3.5-MoE) shapes and a chosen number of decoder layers: hidden 2048,
/// 256 fused experts of width 512 (top-8) plus a 512-wide shared expert per layer, 16 query / 2 KV heads of 256 with
/// the output gate, Gated DeltaNet with 16 key / 32 value heads of 128, vocabulary 248,320, untied lm_head, and — as
/// in the real bf16 release — the MTP layer (with its own 256 fused experts) and the 27-block vision tower, which
/// quantization leaves in bf16 but export must carry through. Every 4th layer is full attention; with fewer than 4
/// layers the last one is, so every size has both layer types to time.
/// </summary>
internal sealed class ScaleModel
{
    public const int RealLayers = 40;
    private const int Seed = 20260101;
    private const string MarkerName = ".scale-complete";

    /// <summary>Bumped when the generator or the shapes change, so a cached checkpoint from an older one is rebuilt.</summary>
    private const string GeneratorVersion = "2";

    private ScaleModel(int layers)
    {
        Layers = layers;
        Dims = new Dims
        {
            Hidden = 2048, Layers = layers, Heads = 16, KvHeads = 2, HeadDim = 256, Experts = 256, TopK = 8,
            ExpertIntermediate = 512, SharedIntermediate = 512, Vocab = 248_320,
            LinearKeyHeads = 16, LinearValueHeads = 32, LinearKeyDim = 128, LinearValueDim = 128, ConvKernel = 4,
            FullAttentionInterval = Math.Min(4, layers),
            VisionDepth = 27, VisionHidden = 1152, VisionIntermediate = 4304, VisionPatch = 16, VisionPositions = 2304,
        };
        Recipe = TinyCheckpoints.Create("qwen3_5_moe", Dims);
        // The real rotary split of the 64 rotary dimensions (32 frequencies) over time, height and width.
        Recipe.Config["text_config"]!["rope_parameters"]!["mrope_section"] = new JsonArray(11, 11, 10);
    }

    public int Layers { get; }

    public Dims Dims { get; }

    public CheckpointRecipe Recipe { get; }

    public static ScaleModel WithLayers(int layers) =>
        layers >= 2 ? new ScaleModel(layers) : throw new ArgumentOutOfRangeException(nameof(layers), layers, "The scale model needs at least 2 layers (one of each type).");

    /// <summary>Bytes of tensor data.</summary>
    public long Bytes => Recipe.Tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * Engine.Safetensors.DTypes.SizeOf(t.DType));

    public int TensorCount => Recipe.Tensors.Count;

    /// <summary>Whether decoder layer <paramref name="index"/> is full attention (the others are Gated DeltaNet).</summary>
    public bool IsFullAttention(int index) => (index + 1) % Dims.FullAttentionInterval == 0;

    /// <summary>
    /// Useful matmul FLOPs per token of decoder layer <paramref name="index"/> as calibration runs it: 2 per weight of
    /// every Linear every token goes through (attention or DeltaNet projections, router, shared expert and its gate: the
    /// layer's 2-D weights) and, of the fused experts' 3-D weights, the top-k share each token is routed to. Attention
    /// scores, the DeltaNet recurrence and the causal conv are not Linears and not counted; lm_head does not run.
    /// </summary>
    public double FlopsPerToken(int index)
    {
        string prefix = $"model.language_model.layers.{index}.";
        double dense = 0, experts = 0;
        foreach (var t in Recipe.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)))
        {
            long elements = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (t.Shape.Length == 2) dense += elements;
            else if (t.Shape.Length == 3 && t.Name.Contains(".experts.", StringComparison.Ordinal)) experts += elements;
        }
        return 2 * (dense + experts * Dims.TopK / Dims.Experts);
    }

    /// <summary>The MoE routers (<c>mlp.gate.weight</c>, not the shared expert's gate): generated with even row scales.</summary>
    private static bool IsRouter(FixtureTensor tensor) => tensor.Name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal);

    /// <summary>The cached checkpoint under <paramref name="benchFolder"/>, generated first when absent or incomplete.</summary>
    public (string Folder, double? GenerateSeconds) Ensure(string benchFolder)
    {
        string folder = Path.Combine(benchFolder, $"scale-qwen3_5_moe-l{Layers}");
        string marker = Path.Combine(folder, MarkerName);
        bool cached = File.Exists(marker) && File.ReadAllText(marker).Trim() == GeneratorVersion;
        // The copy stage writes the checkpoint's size again (export outputs are smaller and deleted before it runs).
        long needed = (cached ? 0 : Bytes) + Bytes;
        Directory.CreateDirectory(benchFolder);
        long free = new DriveInfo(Path.GetFullPath(benchFolder)).AvailableFreeSpace;
        if (free < needed + (1L << 30))
            throw new IOException($"The {Layers}-layer scale benchmark needs {needed / 1e9:F1} GB free (plus 1 GB) under {benchFolder}; there are {free / 1e9:F1} GB. Use fewer --layers.");
        if (cached) return (folder, null);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Console.WriteLine($"generating {folder} ({Bytes / 1e9:F2} GB, seed {Seed})");
        var clock = Stopwatch.StartNew();
        Recipe.Write(folder, WeightLikeRows.Seeded(Seed, IsRouter), maxShardBytes: 4_000_000_000);
        File.WriteAllText(marker, GeneratorVersion);
        return (folder, clock.Elapsed.TotalSeconds);
    }
}
