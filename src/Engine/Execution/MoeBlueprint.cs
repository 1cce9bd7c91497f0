using ModelOptPS.Engine.Model;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// A sparse MoE block: the router (<c>mlp.gate</c> or Mixtral's <c>block_sparse_moe.gate</c>), experts fused on disk
/// (<c>experts.gate_up_proj</c>, <c>experts.down_proj</c>) or one Linear per expert (names through the family's role
/// aliases), and a shared expert with its gate where present.
/// </summary>
internal sealed record MoeBlueprint(
    string Prefix, ExpertSites Experts, int ExpertCount, int TopK, bool Renormalize, DenseMlpBlueprint? Shared,
    IReadOnlyList<string> Tensors) : IFeedForwardBlueprint
{
    private static readonly string[] BlockNames = ["mlp.", "block_sparse_moe."];

    IEnumerable<string> IBlockBlueprint.Tensors => Tensors;

    /// <summary>
    /// Each expert's gate and up read that expert's gathered tokens (<see cref="GroupedExperts"/>); the router, the
    /// shared expert's gate/up and its gate read the block's input (<see cref="MoeBlock"/>).
    /// </summary>
    public IEnumerable<SharedInput> SharedInputs
    {
        get
        {
            var experts = Enumerable.Range(0, ExpertCount).Select(e => new SharedInput(Experts.GateUpModules(e)));
            if (Shared is null) return experts;
            return experts.Prepend(new SharedInput(
                [Prefix + "gate", .. Shared.SharedInputs.Single().Modules, Prefix + "shared_expert_gate"]));
        }
    }

    public static MoeBlueprint? TryPlan(LayerProbe probe, string layerPrefix)
    {
        string? p = BlockNames.Select(b => layerPrefix + b).FirstOrDefault(b => probe.Has(b + "gate.weight"));
        if (p is null) return null;
        int experts = (int)probe.Shape(p + "gate.weight")[0];
        int topK = probe.Config.ExpertsPerToken ?? throw probe.Fail("config.json has no num_experts_per_tok.");
        bool renormalize = RouterRules.Renormalize(probe.Spec.Family, probe.Config)
            ?? throw probe.Fail($"the routing rule of family {probe.Spec.Family} is not known.");

        string container = p + "experts";
        var tensors = new List<string>(probe.LinearTensors(p + "gate"));
        ExpertSites sites;
        if (probe.Has(container + ".gate_up_proj"))
        {
            sites = ExpertSites.ForFused(container);
            tensors.AddRange([container + ".gate_up_proj", container + ".down_proj"]);
        }
        else
        {
            sites = new ExpertSites(container, false, DiskName(probe.Spec, "gate_proj"), DiskName(probe.Spec, "up_proj"), DiskName(probe.Spec, "down_proj"));
            for (int e = 0; e < experts; e++)
            {
                foreach (var name in new[] { sites.GateName, sites.UpName, sites.DownName })
                {
                    string weight = $"{container}.{e}.{name}.weight";
                    if (!probe.Has(weight)) throw probe.Fail($"expert weight '{weight}' is missing.");
                    tensors.Add(weight);
                }
            }
        }

        var shared = DenseMlpBlueprint.TryPlan(probe, p + "shared_expert.");
        if (shared is not null) tensors.AddRange(shared.Tensors.Concat(probe.LinearTensors(p + "shared_expert_gate")));
        return new MoeBlueprint(p, sites, experts, topK, renormalize, shared, tensors);
    }

    /// <summary>The checkpoint's name for an expert projection role (Mixtral: w1, w3, w2).</summary>
    private static string DiskName(ArchitectureSpec spec, string role) =>
        spec.ExpertRoleAliases.FirstOrDefault(kv => kv.Value == role).Key ?? role;

    public IFeedForward Build(WeightLoader loader, MaterializedWeights owner)
    {
        var router = loader.Linear(owner, Prefix + "gate");
        var experts = Experts.Fused ? LoadFused(loader, owner) : LoadPerExpert(loader, owner);
        SharedExpertWeights? shared = Shared is null
            ? null
            : new SharedExpertWeights(Shared.Load(loader, owner), loader.Linear(owner, Prefix + "shared_expert_gate"));
        return new MoeBlock(new MoeWeights(router, experts, shared, TopK, Renormalize));
    }

    private ExpertWeights LoadFused(WeightLoader loader, MaterializedWeights owner) => new(
        loader.FusedExpertParameter(owner, Experts.Container + ".gate_up_proj"),
        loader.FusedExpertParameter(owner, Experts.Container + ".down_proj"),
        Experts);

    /// <summary>Stacks per-expert Linears into [E, 2I, H] and [E, H, I], writing each straight into its slice.</summary>
    private ExpertWeights LoadPerExpert(WeightLoader loader, MaterializedWeights owner)
    {
        string first = $"{Experts.Container}.0.";
        long[] gate = loader.Shape(first + Experts.GateName + ".weight");
        long intermediate = gate[0], hidden = gate[1];
        using var scope = NewDisposeScope();
        Tensor gateUp = owner.Own(empty([ExpertCount, 2 * intermediate, hidden], loader.ComputeType, loader.Device));
        Tensor down = owner.Own(empty([ExpertCount, hidden, intermediate], loader.ComputeType, loader.Device));
        for (int e = 0; e < ExpertCount; e++)
        {
            string x = $"{Experts.Container}.{e}.";
            loader.LinearInto(gateUp[e].narrow(0, 0, intermediate), x + Experts.GateName);
            loader.LinearInto(gateUp[e].narrow(0, intermediate, intermediate), x + Experts.UpName);
            loader.LinearInto(down[e], x + Experts.DownName);
        }
        return new ExpertWeights(gateUp, down, Experts);
    }
}
