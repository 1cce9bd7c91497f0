using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Fixtures;

/// <summary>
/// Deterministic stand-in calibration results for export tests: every input quantizer of the model gets an amax in
/// [0.5, 8) derived from its name, so shared-scale groups really have different members to take the max of.
/// Not a measurement; real statistics come from Invoke-Calibration.
/// </summary>
public static class SyntheticStatistics
{
    public static CalibrationStatistics For(HFModel model)
    {
        var amax = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var module in model.Modules)
        {
            foreach (var q in Quantizer.For(module).Where(q => q.Role == QuantizerRole.Input))
                amax[q.Name] = 0.5f + (uint)StableHash(q.Name) % 7500 / 1000f;
        }
        return new CalibrationStatistics(amax, source: "synthetic (tests)");
    }

    private static int StableHash(string text)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char c in text) h = (h ^ c) * 16777619;
            return h & int.MaxValue;
        }
    }
}
