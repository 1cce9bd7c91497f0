using ModelOptPS.Engine.Execution;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The observer a calibration run hands to the model runner; it collects in one pass what every activation
/// calibrator needs. Per input quantizer: a <see cref="BlockAmaxHistogram"/> (running max and the headroom histogram)
/// for the quantizers headroom may calibrate (NVFP4 inputs), a <see cref="MaxCalibrator"/> for the others (FP8 inputs,
/// the KV cache); a token count per expert of every MoE layer; and, when asked, the Hessian blocks of every weight unit.
/// </summary>
public sealed class StatisticsCollector : IActivationObserver, IDisposable
{
    private readonly Dictionary<string, MaxCalibrator> _calibrators = new(StringComparer.Ordinal);
    private readonly Dictionary<string, BlockAmaxHistogram> _histograms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HessianAccumulator> _hessians = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _tokensPerExpert = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, int> _expertCounts;
    private readonly Func<string, bool> _histogrammed;
    private readonly bool _collectHessians;

    // Linears that read one tensor (q/k/v, gate/up, in_proj_qkv/z) are observed one after another with the same Tensor
    // object: their statistics are identical, so the first one's accumulator serves them all and each batch is
    // reduced once. The set holds the accumulators that already consumed the current input.
    private Tensor? _currentInput;
    private readonly HashSet<object> _consumedCurrentInput = new(ReferenceEqualityComparer.Instance);

    /// <param name="expertCounts">Experts container name to number of experts (so idle experts count as 0).</param>
    /// <param name="histogrammed">Which input quantizers get a headroom histogram; default every one but the KV cache's.</param>
    /// <param name="collectHessians">Also accumulate XᵀX blocks per weight unit (for local Hessian).</param>
    public StatisticsCollector(IReadOnlyDictionary<string, int> expertCounts, Func<string, bool>? histogrammed = null, bool collectHessians = false)
    {
        _expertCounts = expertCounts;
        _histogrammed = histogrammed ?? (name => !IsKvCache(name));
        _collectHessians = collectHessians;
    }

    /// <summary>ModelOpt's KV-cache quantizers (always max calibrated).</summary>
    public static bool IsKvCache(string quantizerName) =>
        quantizerName.EndsWith("k_bmm_quantizer", StringComparison.Ordinal) || quantizerName.EndsWith("v_bmm_quantizer", StringComparison.Ordinal);

    public void ObserveInput(string inputQuantizerName, Tensor input)
    {
        StartInput(input);
        if (_histogrammed(inputQuantizerName))
        {
            var histogram = Accumulator(_histograms, inputQuantizerName, () => new BlockAmaxHistogram(inputQuantizerName));
            if (_consumedCurrentInput.Add(histogram)) histogram.Collect(input);
        }
        else
        {
            var calibrator = Accumulator(_calibrators, inputQuantizerName, () => new MaxCalibrator(inputQuantizerName));
            if (_consumedCurrentInput.Add(calibrator)) calibrator.Collect(input);
        }
    }

    public void ObserveLinearInput(LinearSite site, Tensor input)
    {
        ObserveInput(site.InputQuantizer, input);
        long columns = input.shape[^1];
        // Inputs whose width is not a multiple of 16 cannot be NVFP4 quantized, so no local Hessian needs them.
        if (!_collectHessians || columns % HessianAccumulator.BlockSize != 0) return;
        var hessian = Accumulator(_hessians, site.WeightUnit, () => new HessianAccumulator(columns, input.device));
        if (_consumedCurrentInput.Add(hessian)) hessian.Add(input);
    }

    private void StartInput(Tensor input)
    {
        if (ReferenceEquals(input, _currentInput)) return;
        _currentInput = input;
        _consumedCurrentInput.Clear();
    }

    /// <summary>The key's accumulator; a new key that reads the current input shares the accumulator that already consumed it.</summary>
    private T Accumulator<T>(Dictionary<string, T> accumulators, string key, Func<T> create) where T : class
    {
        if (accumulators.TryGetValue(key, out var existing)) return existing;
        var shared = _consumedCurrentInput.OfType<T>().FirstOrDefault();
        return accumulators[key] = shared ?? create();
    }

    public void ObserveRouting(string expertsContainer, Tensor expertIndices)
    {
        if (!_tokensPerExpert.TryGetValue(expertsContainer, out var counts))
        {
            int experts = _expertCounts.TryGetValue(expertsContainer, out int n) ? n : 0;
            _tokensPerExpert[expertsContainer] = counts = new long[experts];
        }
        using var scope = NewDisposeScope();
        var histogram = bincount(expertIndices.flatten().cpu(), minlength: counts.Length).data<long>().ToArray();
        if (histogram.Length > counts.Length)
        {
            Array.Resize(ref counts, histogram.Length);
            _tokensPerExpert[expertsContainer] = counts;
        }
        for (int e = 0; e < histogram.Length; e++) counts[e] += histogram[e];
    }

    /// <summary>Max |x| per quantizer that saw at least one value.</summary>
    public IReadOnlyDictionary<string, float> InputAmax =>
        _calibrators.Select(kv => (kv.Key, kv.Value.Amax))
            .Concat(_histograms.Select(kv => (kv.Key, Amax: kv.Value.Max)))
            .Where(x => x.Amax is not null)
            .ToDictionary(x => x.Key, x => x.Amax!.Value, StringComparer.Ordinal);

    /// <summary>The headroom histograms, per input quantizer that has one.</summary>
    public IReadOnlyDictionary<string, BlockAmaxHistogram> Histograms => _histograms;

    /// <summary>XᵀX / N blocks per weight unit (empty unless Hessians are collected).</summary>
    public IReadOnlyDictionary<string, HessianBlocks> HessianBlocks() =>
        _hessians.ToDictionary(kv => kv.Key, kv => kv.Value.ToBlocks(), StringComparer.Ordinal);

    /// <summary>Tokens routed to each expert, per experts container.</summary>
    public IReadOnlyDictionary<string, long[]> TokensPerExpert => _tokensPerExpert;

    public void Dispose()
    {
        foreach (var hessian in _hessians.Values.Distinct()) hessian.Dispose();
        _hessians.Clear();
    }
}
