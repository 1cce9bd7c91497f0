using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// A layer's routed experts stacked as in transformers v5 memory: <see cref="GateUp"/> [E, 2I, H] (gate rows first),
/// <see cref="Down"/> [E, H, I]. Per-expert checkpoints are stacked into the same form as they are read; the
/// <see cref="Names"/> keep reporting each projection under its checkpoint name.
/// </summary>
internal sealed record ExpertWeights(Tensor GateUp, Tensor Down, ExpertSites Names)
{
    public int Count => (int)GateUp.shape[0];

    public long Intermediate => Down.shape[2];
}

/// <summary>
/// The observation names of a layer's experts. Fused on disk: one shared gate_up and one down site for all experts.
/// Per expert: <c>&lt;x&gt;.&lt;e&gt;.gate_proj</c> and <c>up_proj</c> (both see the gathered tokens) and
/// <c>down_proj</c>, with Mixtral's w1/w3/w2 names where the checkpoint uses them.
/// </summary>
internal sealed record ExpertSites(string Container, bool Fused, string GateName, string UpName, string DownName)
{
    public static ExpertSites ForFused(string container) => new(container, true, "gate_up_proj", "gate_up_proj", "down_proj");

    public LinearSite Gate(int expert) => Fused ? LinearSite.ForFusedExperts(Container, GateName, expert) : LinearSite.ForModule($"{Container}.{expert}.{GateName}", expert);

    public LinearSite Up(int expert) => Fused ? LinearSite.ForFusedExperts(Container, UpName, expert) : LinearSite.ForModule($"{Container}.{expert}.{UpName}", expert);

    /// <summary>The expert's gate and up Linears as exported: fused experts are written per expert (gate rows first).</summary>
    public IReadOnlyList<string> GateUpModules(int expert) => Fused
        ? [$"{Container}.{expert}.gate_proj", $"{Container}.{expert}.up_proj"]
        : [$"{Container}.{expert}.{GateName}", $"{Container}.{expert}.{UpName}"];

    public LinearSite Down(int expert) => Fused ? LinearSite.ForFusedExperts(Container, DownName, expert) : LinearSite.ForModule($"{Container}.{expert}.{DownName}", expert);
}
