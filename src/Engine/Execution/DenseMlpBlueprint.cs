namespace ModelOptPS.Engine.Execution;

/// <summary>A dense SwiGLU MLP (<c>mlp.gate_proj/up_proj/down_proj</c>); also the shape of a shared expert.</summary>
internal sealed record DenseMlpBlueprint(string Prefix, IReadOnlyList<string> Tensors) : IFeedForwardBlueprint
{
    IEnumerable<string> IBlockBlueprint.Tensors => Tensors;

    /// <summary>gate_proj and up_proj read the same input (<see cref="SwiGluMlp"/>).</summary>
    public IEnumerable<SharedInput> SharedInputs => [new([Prefix + "gate_proj", Prefix + "up_proj"])];

    public static DenseMlpBlueprint? TryPlan(LayerProbe probe, string mlpPrefix)
    {
        if (!probe.Has(mlpPrefix + "gate_proj.weight")) return null;
        var tensors = new[] { "gate_proj", "up_proj", "down_proj" }.SelectMany(n => probe.LinearTensors(mlpPrefix + n)).ToList();
        return new DenseMlpBlueprint(mlpPrefix, tensors);
    }

    public MlpWeights Load(WeightLoader loader, MaterializedWeights owner) => new(
        loader.Linear(owner, Prefix + "gate_proj"),
        loader.Linear(owner, Prefix + "up_proj"),
        loader.Linear(owner, Prefix + "down_proj"));

    public IFeedForward Build(WeightLoader loader, MaterializedWeights owner) => new SwiGluMlp(Load(loader, owner));
}
