using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// A Gated DeltaNet layer: heads and dims from config (<c>linear_*</c>), the projection layout from the tensors present
/// (Qwen3-Next's grouped <c>in_proj_qkvz</c>/<c>in_proj_ba</c> or Qwen3.5's split <c>in_proj_qkv/z/b/a</c>).
/// </summary>
internal sealed record DeltaNetBlueprint(string Prefix, DeltaNetShape Shape, bool Grouped, IReadOnlyList<string> Tensors) : IMixerBlueprint
{
    private static readonly string[] GroupedProjections = ["in_proj_qkvz", "in_proj_ba"];
    private static readonly string[] SplitProjections = ["in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a"];

    IEnumerable<string> IBlockBlueprint.Tensors => Tensors;

    /// <summary>Every input projection reads the layer's normed hidden states (<see cref="IDeltaNetProjections"/>):
    /// Qwen3-Next's in_proj_qkvz and in_proj_ba, or Qwen3.5's in_proj_qkv, in_proj_z, in_proj_b and in_proj_a.</summary>
    public IEnumerable<SharedInput> SharedInputs => [new((Grouped ? GroupedProjections : SplitProjections).Select(p => Prefix + p).ToList())];

    public static DeltaNetBlueprint? TryPlan(LayerProbe probe, string layerPrefix)
    {
        string p = layerPrefix + "linear_attn.";
        if (!probe.Has(p + "out_proj.weight")) return null;
        bool grouped = probe.Has(p + "in_proj_qkvz.weight");
        long[] conv = probe.Shape(p + "conv1d.weight");
        var shape = new DeltaNetShape(
            probe.Require("linear_num_key_heads"), probe.Require("linear_num_value_heads"),
            probe.Require("linear_key_head_dim"), probe.Require("linear_value_head_dim"), (int)conv[^1], probe.Eps);
        if (conv[0] != shape.ConvChannels || shape.ValueHeads % shape.KeyHeads != 0)
            throw probe.Fail($"{p}conv1d has {conv[0]} channels; the config's linear-attention heads give {shape.ConvChannels}.");

        var tensors = new List<string>();
        foreach (var projection in grouped ? GroupedProjections : SplitProjections) tensors.AddRange(probe.LinearTensors(p + projection));
        tensors.AddRange(probe.LinearTensors(p + "out_proj"));
        tensors.AddRange([p + "conv1d.weight", p + "A_log", p + "dt_bias", p + "norm.weight"]);
        return new DeltaNetBlueprint(p, shape, grouped, tensors);
    }

    public ISequenceMixer Build(WeightLoader loader, MaterializedWeights owner, RotaryEmbedding rope)
    {
        IDeltaNetProjections inputs = Grouped
            ? new GroupedDeltaNetProjections(loader.Linear(owner, Prefix + "in_proj_qkvz"), loader.Linear(owner, Prefix + "in_proj_ba"))
            : new SplitDeltaNetProjections(loader.Linear(owner, Prefix + "in_proj_qkv"), loader.Linear(owner, Prefix + "in_proj_z"),
                loader.Linear(owner, Prefix + "in_proj_b"), loader.Linear(owner, Prefix + "in_proj_a"));
        var weights = new DeltaNetWeights(
            inputs,
            loader.Parameter(owner, Prefix + "conv1d.weight"),
            // The decay parameters are used in float32 whatever the compute dtype (transformers: A_log.float()).
            loader.Parameter(owner, Prefix + "A_log", ScalarType.Float32),
            loader.Parameter(owner, Prefix + "dt_bias", ScalarType.Float32),
            loader.Parameter(owner, Prefix + "norm.weight"),
            loader.Linear(owner, Prefix + "out_proj"));
        return new GatedDeltaNetBlock(Shape, weights);
    }
}
