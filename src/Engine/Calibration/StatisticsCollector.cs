using ModelOptPS.Engine.Execution;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// The observer a calibration run hands to the model runner: one <see cref="MaxCalibrator"/> per input quantizer
/// (created on first sight), and a token count per expert of every MoE layer.
/// </summary>
public sealed class StatisticsCollector : IActivationObserver
{
    private readonly Dictionary<string, MaxCalibrator> _calibrators = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _tokensPerExpert = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, int> _expertCounts;

    /// <param name="expertCounts">Experts container name to number of experts (so idle experts count as 0).</param>
    public StatisticsCollector(IReadOnlyDictionary<string, int> expertCounts) => _expertCounts = expertCounts;

    public void ObserveInput(string inputQuantizerName, Tensor input)
    {
        if (!_calibrators.TryGetValue(inputQuantizerName, out var calibrator))
            _calibrators[inputQuantizerName] = calibrator = new MaxCalibrator(inputQuantizerName);
        calibrator.Collect(input);
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

    /// <summary>Input amax per quantizer that saw at least one value.</summary>
    public IReadOnlyDictionary<string, float> InputAmax =>
        _calibrators.Where(kv => kv.Value.Amax is not null).ToDictionary(kv => kv.Key, kv => kv.Value.Amax!.Value, StringComparer.Ordinal);

    /// <summary>Tokens routed to each expert, per experts container.</summary>
    public IReadOnlyDictionary<string, long[]> TokensPerExpert => _tokensPerExpert;
}
