using ModelOptPS.Engine.Execution;

namespace ModelOptPS.Engine.Calibration;

/// <summary>What a calibration run did: data, tokens, time, expert coverage, and anything the user should know.</summary>
public sealed class CalibrationReport
{
    public required string Model { get; init; }
    public required string Data { get; init; }
    public required int Samples { get; init; }
    public required int SequenceLength { get; init; }
    public required long Tokens { get; init; }
    public required bool AllExperts { get; init; }
    public required TimeSpan Duration { get; init; }

    /// <summary>Quantizers (Linear inputs and KV cache) that got an amax.</summary>
    public required int QuantizersCalibrated { get; init; }

    /// <summary>Per MoE layer, tokens per expert (routed, not the -AllExperts extra passes).</summary>
    public required IReadOnlyList<ExpertCoverage> ExpertCoverage { get; init; }

    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>How the NVFP4 input amaxes were computed (KV cache and FP8 inputs are always max).</summary>
    public ActivationCalibrator ActivationCalibrator { get; init; } = ActivationCalibrator.Max;

    /// <summary>Weight units with Hessian blocks (0 unless they were collected).</summary>
    public int HessianUnits { get; init; }

    /// <summary>The sample split calibrated (which shard of which set); a merge reports the whole set.</summary>
    public required CalibrationSplit Split { get; init; }

    /// <summary>The dtype the model ran in (part of the split: bf16 and fp32 statistics never merge).</summary>
    public ComputeDType ComputeDType => Split.ComputeDType;

    public double TokensPerSecond => Duration.TotalSeconds > 0 ? Tokens / Duration.TotalSeconds : 0;

    /// <summary>Experts, over all layers, that no calibration token was routed to.</summary>
    public int IdleExperts => ExpertCoverage.Sum(c => c.Idle.Length);

    public override string ToString() =>
        $"{Tokens} tokens ({Samples} x {SequenceLength}) in {Duration.TotalSeconds:F1} s ({ComputeDType}), {QuantizersCalibrated} quantizers ({ActivationCalibrator} activations)" +
        (HessianUnits > 0 ? $", Hessian blocks for {HessianUnits} weight units" : "") +
        (ExpertCoverage.Count > 0 ? $", {IdleExperts} idle experts in {ExpertCoverage.Count} MoE layers" : "");
}
