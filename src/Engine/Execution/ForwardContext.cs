using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// What every block needs while it runs: the observer, the activation transform, the all-experts switch, and where
/// the run is (for errors). Every Linear goes through <see cref="Linear"/> or <see cref="Input"/>, which is where inputs
/// are checked for NaN/Inf, observed, and transformed; keys and values go through <see cref="Quantizer"/> as cached.
/// </summary>
internal sealed class ForwardContext(string checkpointFolder, IActivationObserver? observer, ActivationTransform? transform, bool allExperts)
{
    /// <summary>Where the run is, for error messages (e.g. "decoder layer 3").</summary>
    public string Where { get; set; } = "embedding";

    public bool AllExperts => allExperts;

    /// <summary>Checks, observes and transforms <paramref name="x"/>, then applies the Linear.</summary>
    public Tensor Linear(LinearWeights linear, Tensor x)
    {
        CheckFinite(x, linear.Site);
        return F.linear(Input(linear.Site, x), linear.Weight, linear.Bias);
    }

    /// <summary>A Linear at a given site with a bare weight (fused experts' slices).</summary>
    public Tensor Linear(LinearSite site, Tensor x, Tensor weight)
    {
        CheckFinite(x, site);
        return F.linear(Input(site, x), weight);
    }

    /// <summary>
    /// Observes <paramref name="x"/> as the input of <paramref name="site"/> and returns what the Linear multiplies:
    /// <paramref name="x"/> itself unless an activation transform replaces it. For inputs shared by several Linears
    /// (q/k/v, gate/up), call <see cref="CheckFinite"/> once and this per Linear.
    /// </summary>
    public Tensor Input(LinearSite site, Tensor x)
    {
        observer?.ObserveLinearInput(site, x);
        return Transform(site.InputQuantizer, x);
    }

    /// <summary>
    /// Passes <paramref name="x"/> through the quantizer named <paramref name="quantizerName"/> (a Linear's input, or an
    /// attention block's <c>k_bmm_quantizer</c>/<c>v_bmm_quantizer</c>): the observer sees it, the transform may replace
    /// it. Without either, <paramref name="x"/> itself at no cost.
    /// </summary>
    public Tensor Quantizer(string quantizerName, Tensor x)
    {
        observer?.ObserveInput(quantizerName, x);
        return Transform(quantizerName, x);
    }

    private Tensor Transform(string quantizerName, Tensor x) => transform?.Invoke(quantizerName, x) ?? x;

    public void ObserveRouting(string expertsContainer, Tensor expertIndices) =>
        observer?.ObserveRouting(expertsContainer, expertIndices);

    public void CheckFinite(Tensor x, LinearSite site)
    {
        using var mask = x.isfinite();
        using var all = mask.all();
        if (!all.item<bool>()) throw ExecutionErrors.NonFinite(checkpointFolder, Where, site.Module);
    }
}
