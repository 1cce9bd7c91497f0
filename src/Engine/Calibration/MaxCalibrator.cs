using ModelOptPS.Engine.Errors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// ModelOpt's max calibration for one quantizer: a running max of |x| over every value it is shown
/// (collect), read out once at the end (compute). One small object per quantizer, as ModelOpt's MaxCalibrator.
/// </summary>
public sealed class MaxCalibrator
{
    private readonly string _quantizerName;

    public MaxCalibrator(string quantizerName) => _quantizerName = quantizerName;

    /// <summary>Values seen so far (elements).</summary>
    public long Count { get; private set; }

    /// <summary>The running max |x|, or null when nothing was collected.</summary>
    public float? Amax { get; private set; }

    public void Collect(Tensor x)
    {
        if (x.numel() == 0) return;
        using var scope = NewDisposeScope();
        float max = x.abs().max().to(ScalarType.Float32).item<float>();
        if (!float.IsFinite(max)) throw NonFinite(_quantizerName);
        Amax = Amax is { } a ? Math.Max(a, max) : max;
        Count += x.numel();
    }

    internal static ModelOptException NonFinite(string quantizerName) =>
        new(CalibrationErrorIds.NonFiniteActivation, ErrorKind.InvalidData,
            $"The input of '{quantizerName}' contains NaN or Inf during calibration; the model (or its weights) produce " +
            "non-finite activations at this module, and no input scale can be derived.");

    public void Reset()
    {
        Amax = null;
        Count = 0;
    }
}
