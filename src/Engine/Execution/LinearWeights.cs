using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>One Linear's parameters and the module name it is observed under.</summary>
internal sealed record LinearWeights(string Module, Tensor Weight, Tensor? Bias)
{
    public LinearSite Site => LinearSite.ForModule(Module);
}
