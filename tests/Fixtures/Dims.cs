namespace ModelOptPS.Fixtures;

/// <summary>
/// Sizes of a generated model. The defaults make checkpoints of a few hundred KB whose Linear inputs are all
/// multiples of 16 (NVFP4's block); benchmarks scale them up.
/// </summary>
public sealed record Dims
{
    public int Hidden { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int HeadDim { get; init; } = 16;
    public int Intermediate { get; init; } = 128;
    public int Experts { get; init; } = 8;
    public int TopK { get; init; } = 2;
    public int ExpertIntermediate { get; init; } = 32;
    public int SharedIntermediate { get; init; } = 32;
    /// <summary>Embedding rows: the fixture tokenizer's 256 byte tokens and 3 specials, padded as real models pad.</summary>
    public int Vocab { get; init; } = 288;

    /// <summary>Gated DeltaNet: key heads, value heads, key dim, value dim, conv kernel.</summary>
    public int LinearKeyHeads { get; init; } = 2;
    public int LinearValueHeads { get; init; } = 4;
    public int LinearKeyDim { get; init; } = 16;
    public int LinearValueDim { get; init; } = 16;
    public int ConvKernel { get; init; } = 4;

    /// <summary>Every n-th layer is full attention in the hybrid families.</summary>
    public int FullAttentionInterval { get; init; } = 4;

    /// <summary>Qwen3.5-MoE vision tower: blocks, width, MLP width, patch side, position embeddings (tiny by default;
    /// the real 35B-A3B tower is 27 × 1152, MLP 4304, patch 16, 2304 positions).</summary>
    public int VisionDepth { get; init; } = 1;
    public int VisionHidden { get; init; } = 32;
    public int VisionIntermediate { get; init; } = 64;
    public int VisionPatch { get; init; } = 4;
    public int VisionPositions { get; init; } = 16;

    public static Dims Tiny { get; } = new();
}
