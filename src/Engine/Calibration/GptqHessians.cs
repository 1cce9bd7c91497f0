using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Torch;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The observer of a layerwise GPTQ run: sums XᵀX (fp32, on the runner's device) and the token count for the inputs
/// of the layer being calibrated only (<see cref="Expect"/>), so memory is one layer's Hessians. A Linear's key is its
/// input quantizer's name (q/k/v share one). A fused expert's inputs arrive under the container's shared quantizer name,
/// once per expert that got tokens, in expert order right after that batch's routing; the key is
/// <c>&lt;quantizer&gt;#&lt;expert&gt;</c> and the expert is taken from the routing (<see cref="GroupedExperts"/>' order).
/// </summary>
internal sealed class GptqHessians : IActivationObserver, IDisposable
{
    private readonly Dictionary<string, (Tensor Sum, long Tokens)> _sums = new(StringComparer.Ordinal);
    private readonly ILookup<string, string> _fusedInputs;
    private readonly Dictionary<string, Queue<int>> _pendingExperts = new(StringComparer.Ordinal);
    private readonly ActivationTransform? _activations;
    private HashSet<string> _wanted = new(StringComparer.Ordinal);

    /// <param name="fusedInputs">(experts container, its gate_up / down input quantizer name) of every fused expert layer.</param>
    /// <param name="activations">The inputs' fake quantization, applied before summing (ModelOpt's Hessian is over <c>input_quantizer(x)</c>).</param>
    public GptqHessians(IEnumerable<(string Container, string InputQuantizer)> fusedInputs, ActivationTransform? activations = null)
    {
        _fusedInputs = fusedInputs.Distinct().ToLookup(f => f.Container, f => f.InputQuantizer, StringComparer.Ordinal);
        _activations = activations;
    }

    public static string Key(string inputQuantizer, int? expert) => expert is int e ? $"{inputQuantizer}#{e}" : inputQuantizer;

    /// <summary>Drops what was summed and accumulates only these keys from now on.</summary>
    public void Expect(IEnumerable<string> keys)
    {
        Clear();
        _wanted = keys.ToHashSet(StringComparer.Ordinal);
    }

    public void ObserveRouting(string expertsContainer, Tensor expertIndices)
    {
        if (!_fusedInputs.Contains(expertsContainer)) return;
        using var scope = NewDisposeScope();
        long[] counts = expertIndices.flatten().cpu().bincount(null, 0).data<long>().ToArray();
        var routed = Enumerable.Range(0, counts.Length).Where(e => counts[e] > 0).ToArray();
        foreach (string quantizer in _fusedInputs[expertsContainer]) _pendingExperts[quantizer] = new Queue<int>(routed);
    }

    public void ObserveInput(string inputQuantizerName, Tensor input)
    {
        string key = inputQuantizerName;
        if (_pendingExperts.TryGetValue(inputQuantizerName, out var experts))
        {
            if (!experts.TryDequeue(out int e))
                throw new ModelOptException("GptqExpertInputUnmatched", ErrorKind.InvalidOperation,
                    $"GPTQ saw an input of '{inputQuantizerName}' that matches no routed expert (the runner's expert order changed).");
            key = Key(inputQuantizerName, e);
        }
        if (!_wanted.Contains(key) || input.shape[0] == 0) return;
        long cols = input.shape[^1];
        if (!_sums.TryGetValue(key, out var entry))
            entry = (zeros(cols, cols, ScalarType.Float32, input.device).DetachFromDisposeScope(), 0);
        using (NewDisposeScope())
        {
            Tensor x = (_activations?.Invoke(inputQuantizerName, input) ?? input).reshape(-1, cols).to(ScalarType.Float32);
            entry.Sum.add_(x.t().matmul(x), Scalars.One);
            entry.Tokens += x.shape[0];
        }
        _sums[key] = entry;
    }

    /// <summary>H = XᵀX/N [cols, cols] row-major and N, or (null, 0) when no token reached the key.</summary>
    public (float[]? Hessian, long Tokens) Hessian(string key)
    {
        if (!_sums.TryGetValue(key, out var entry)) return (null, 0);
        using var scope = NewDisposeScope();
        using var tokens = Scalars.Temporary(entry.Tokens);
        return (entry.Sum.div(tokens).cpu().data<float>().ToArray(), entry.Tokens);
    }

    public void Clear()
    {
        foreach (var (sum, _) in _sums.Values) sum.Dispose();
        _sums.Clear();
    }

    public void Dispose() => Clear();
}
