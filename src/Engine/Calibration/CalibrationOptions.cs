using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;

namespace ModelOptPS.Engine.Calibration;

/// <summary>What to calibrate on and how to run it.</summary>
public sealed record CalibrationOptions
{
    /// <summary>A text, JSONL or Parquet file; null for the built-in corpus (its training split).</summary>
    public string? DatasetPath { get; init; }

    /// <summary>The JSONL field or Parquet column holding the text (default <c>text</c>).</summary>
    public string? Column { get; init; }

    public SequenceOptions Sequences { get; init; } = new();

    /// <summary>Calibrate only this shard of the sample set (whole batches of it); null for the whole set.</summary>
    public CalibrationShard? Shard { get; init; }

    /// <summary>Also run every token through every expert for statistics (llm-compressor's moe_calibrate_all_experts).</summary>
    public bool AllExperts { get; init; }

    /// <summary>libtorch device: <c>cpu</c> (default) or <c>cuda</c> with a CUDA build of libtorch.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Tokens run through a layer at once (bounds activation memory; the batch size in tokens).</summary>
    public int TokensPerChunk { get; init; } = 4096;

    /// <summary><see cref="TokensPerChunk"/> for <paramref name="batchSize"/> sequences of <paramref name="sequenceLength"/> tokens.</summary>
    public static int TokensPerBatch(int batchSize, int sequenceLength)
    {
        long tokens = (long)batchSize * sequenceLength;
        return tokens <= Array.MaxLength ? (int)tokens
            : throw ExecutionErrors.TooLarge($"{batchSize:N0} sequences of {sequenceLength:N0} tokens at once are {tokens:N0} tokens");
    }

    public int? Threads { get; init; }

    /// <summary>
    /// The dtype the statistics pass runs in: Float32 (weights widened as they are read) or BFloat16 (weights as a bf16
    /// checkpoint stores them, activations bf16 between Linears as transformers runs on the GPU, half the weight memory).
    /// GPTQ's passes run in Float32 whatever this says. The engine's default is Float32, the exact reference arithmetic;
    /// Invoke-Calibration defaults to BFloat16 (bench/CalibrationPrecision.ps1 measured why).
    /// </summary>
    public ComputeDType ComputeDType { get; init; } = ComputeDType.Float32;

    /// <summary>How NVFP4 input amaxes are computed from the statistics (the statistics keep what every calibrator needs).</summary>
    public ActivationCalibrator ActivationCalibrator { get; init; } = ActivationCalibrator.Max;

    /// <summary>nvfp4_act_headroom's parameters (a recipe's anchor_percentile, upper_percentile, rho).</summary>
    public HeadroomSettings Headroom { get; init; } = HeadroomSettings.Default;

    /// <summary>Also collect the Hessian blocks XᵀX/N of every weight unit (local Hessian needs them; memory 16 × in-features doubles per unit).</summary>
    public bool CollectHessians { get; init; }
}
