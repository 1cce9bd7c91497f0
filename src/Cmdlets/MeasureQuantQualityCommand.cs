using System.Management.Automation;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Measures how much quality NVFP4 costs a model on held-out text.</para>
/// <para type="description">Runs the source model and its NVFP4 form on the same held-out text and reports perplexity
/// of each, the mean KL divergence of their next-token distributions and top-1 agreement. The NVFP4 form is computed as
/// an NVFP4 engine computes it: dequantized NVFP4 weights and, for W4A4, activations quantized per 16-element block
/// against the calibrated input scale. Give either a model from Set-QuantConfig (and Invoke-Calibration), or an
/// exported folder with -Path and its source with -Reference, which also proves the export decodes.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "QuantQuality", DefaultParameterSetName = ModelSet)]
[OutputType(typeof(QualityReport))]
public sealed class MeasureQuantQualityCommand : SequenceDataCmdlet
{
    private const string ModelSet = "Model";
    private const string ExportSet = "Export";

    public MeasureQuantQualityCommand()
        : base(new QualityOptions().Sequences)
    {
    }

    /// <summary>A model with a plan (and statistics for W4A4).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ModelSet)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>An exported NVFP4 checkpoint folder (an Export-Nvfp4 result pipes in as -Path and -Reference).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = ExportSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The source checkpoint the export was made from.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ExportSet)]
    [Alias("SourcePath")]
    [ValidateNotNullOrEmpty]
    public string Reference { get; set; } = "";

    /// <summary>Evaluation text file (.txt, .jsonl, .parquet); the built-in corpus's held-out split by default.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Dataset { get; set; }

    /// <summary>Tokens per evaluation sequence (default 256).</summary>
    [Parameter]
    [ValidateRange(2, 1_000_000)]
    public int SequenceLength { get; set; } = new QualityOptions().Sequences.SequenceLength;

    protected override void ProcessRecord()
    {
        var options = new QualityOptions
        {
            DatasetPath = DatasetPath(Dataset),
            Column = Column,
            Sequences = Sequences(SequenceLength),
            Device = Device,
        };
        var progress = new PipelineProgress<QualityProgress>(this, 4, "Measure-QuantQuality", (p, record) =>
        {
            record.StatusDescription = $"Sequences {p.SequencesDone} of {p.Sequences} (reference and NVFP4)";
            record.PercentComplete = 100 * p.SequencesDone / p.Sequences;
            return p.SequencesDone == p.Sequences;
        });
        HFModel? source = null;
        RunEngine(ParameterSetName == ModelSet ? $"Measuring the quality of {InputObject.Name}" : $"Measuring the quality of '{ResolvePath(Path)}'",
            ParameterSetName == ModelSet ? InputObject : Path, () =>
        {
            QualityReport report;
            if (ParameterSetName == ModelSet)
            {
                WriteVerbose($"Measuring {InputObject.Name} against its planned NVFP4 form on {Dataset ?? "the built-in corpus's held-out split"}.");
                report = QualityMeasurer.MeasurePlanned(InputObject, options, progress, StopToken);
            }
            else
            {
                source = ModelImporter.Import(ResolvePath(Reference));
                WriteVerbose($"Measuring the export '{ResolvePath(Path)}' (read back from disk) against '{source.Path}'.");
                report = QualityMeasurer.MeasureExport(source, ResolvePath(Path), options, progress, StopToken);
            }
            WriteVerbose(report.ToString());
            WriteObject(report);
        }, () =>
        {
            source?.Dispose();
            progress.Complete();
        });
    }

}
