using System.Management.Automation;
using ModelOptPS.Engine.Data;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// The parameters of the cmdlets that run text through a model (Invoke-Calibration, Measure-QuantQuality), defined
/// once: which column of the data, how many sequences, the seed of their order, the device. -Dataset and
/// -SequenceLength stay on each cmdlet: the dataset is positional only for Invoke-Calibration, and a sequence
/// measured for quality needs at least two tokens (one prediction).
/// </summary>
public abstract class SequenceDataCmdlet : ModelOptCmdlet
{
    protected SequenceDataCmdlet(SequenceOptions defaults)
    {
        NumSamples = defaults.NumSamples;
        Seed = defaults.Seed;
    }

    /// <summary>The JSONL field or Parquet column with the text (default 'text').</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Column { get; set; }

    /// <summary>Number of sequences.</summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int NumSamples { get; set; }

    /// <summary>Seed of the document order: the same seed gives the same sequences.</summary>
    [Parameter]
    public int Seed { get; set; }

    /// <summary>libtorch device: cpu (default) or cuda (needs a CUDA build of libtorch).</summary>
    [Parameter]
    [ValidateSet("cpu", "cuda")]
    public string Device { get; set; } = "cpu";

    /// <summary>The -Dataset argument as a file-system path; null for the built-in corpus.</summary>
    protected string? DatasetPath(string? dataset) => dataset is null ? null : ResolvePath(dataset);

    protected SequenceOptions Sequences(int sequenceLength) => new() { NumSamples = NumSamples, SequenceLength = sequenceLength, Seed = Seed };
}
