using System.Management.Automation;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Measures activation ranges on calibration text and attaches them to the model.</para>
/// <para type="description">Runs the unquantized model in TorchSharp (libtorch), layer by layer from the memory-mapped
/// checkpoint, over calibration text (the built-in corpus, or -Dataset), and records for every Linear the largest |x|
/// at its input (ModelOpt's max calibration) and how many tokens each expert saw. The model flows on with the
/// statistics attached, ready for Export-Nvfp4; the run's report is in $model.CalibrationReport and -ReportVariable.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "Calibration", DefaultParameterSetName = WholeSet)]
[OutputType(typeof(HFModel), ParameterSetName = [WholeSet])]
[OutputType(typeof(CalibrationShardInfo), ParameterSetName = [ShardSet])]
public sealed class InvokeCalibrationCommand : SequenceDataCmdlet
{
    private const string WholeSet = "WholeSet";
    private const string ShardSet = "Shard";

    public InvokeCalibrationCommand()
        : base(new SequenceOptions())
    {
    }

    /// <summary>The model from Set-QuantConfig.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>Calibration data: a .txt/.md file, a .jsonl file (text or chat messages) or a .parquet file.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Dataset { get; set; }

    /// <summary>Tokens per sequence (default 256).</summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int SequenceLength { get; set; } = new SequenceOptions().SequenceLength;

    /// <summary>Sequences run through a layer at once (default 16); bounds activation memory.</summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int BatchSize { get; set; } = 16;

    /// <summary>Also pass every token through every expert for statistics; only routed outputs feed the next layer.</summary>
    [Parameter]
    public SwitchParameter AllExperts { get; set; }

    /// <summary>How NVFP4 input scales are computed: Max (ModelOpt's max, the default) or Headroom (nvfp4_act_headroom).</summary>
    [Parameter]
    public ActivationCalibrator ActivationCalibrator { get; set; } = ActivationCalibrator.Max;

    /// <summary>Calibrate only this shard (0-based) of the sample set; with -ShardCount and -StatisticsPath.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ShardSet)]
    [ValidateRange(0, 99_999)]
    public int ShardIndex { get; set; }

    /// <summary>How many shards the sample set is split into (contiguous ranges of whole batches).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ShardSet)]
    [ValidateRange(1, 100_000)]
    public int ShardCount { get; set; }

    /// <summary>Where to save the statistics (a safetensors file that Merge-CalibrationStatistics reads).</summary>
    [Parameter(ParameterSetName = WholeSet)]
    [Parameter(Mandatory = true, ParameterSetName = ShardSet)]
    [ValidateNotNullOrEmpty]
    public string? StatisticsPath { get; set; }

    /// <summary>
    /// The dtype the model runs in while calibrating: BFloat16 (default; as ModelOpt calibrates on the GPU, half the
    /// expert memory, measured 2.2x less CPU than Float32 on a Qwen3.5-MoE) or Float32.
    /// </summary>
    [Parameter]
    public ComputeDType ComputeDType { get; set; } = ComputeDType.BFloat16;

    /// <summary>Name of a variable (without $) that receives the calibration report.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ReportVariable { get; set; }

    protected override void ProcessRecord()
    {
        var progress = new PipelineProgress<RunnerProgress>(this, 2, $"Invoke-Calibration {InputObject.Name}", (p, record) =>
        {
            record.StatusDescription = $"Layer {p.LayersDone} of {p.LayerCount}, {p.Tokens} tokens";
            record.PercentComplete = (int)Math.Clamp(p.PercentComplete, 0, 100);
            record.SecondsRemaining = p.Remaining is { } left ? (int)Math.Ceiling(left.TotalSeconds) : -1;
            return p.LayersDone == p.LayerCount;
        });
        WriteVerbose($"Calibrating {InputObject.Name} on {(Dataset ?? "the built-in corpus")}: {NumSamples} sequences of {SequenceLength} tokens, " +
                     $"{BatchSize} at a time, seed {Seed}, device {Device} in {ComputeDType}, {ActivationCalibrator} activation calibrator{(AllExperts ? ", every token through every expert" : "")}.");
        RunEngine($"Calibrating {InputObject.Name}", InputObject, () =>
        {
            if (InputObject.Plan is null)
            {
                InputObject.Plan = QuantPlanner.Plan(InputObject, Presets.Get(Presets.Default));
                WriteWarning($"{InputObject.Name} has no plan; calibrating for {Presets.Default} (pipe through Set-QuantConfig to choose another).");
            }
            var options = new CalibrationOptions
            {
                DatasetPath = DatasetPath(Dataset),
                Column = Column,
                Sequences = Sequences(SequenceLength),
                AllExperts = AllExperts,
                Device = Device,
                ComputeDType = ComputeDType,
                ActivationCalibrator = ActivationCalibrator,
                // Local Hessian searches block scales against the inputs' XᵀX/N blocks, collected in the same pass.
                CollectHessians = InputObject.Plan.WeightAlgorithm == WeightAlgorithm.LocalHessian,
                TokensPerChunk = CalibrationOptions.TokensPerBatch(BatchSize, SequenceLength),
                Shard = ParameterSetName == ShardSet ? new CalibrationShard(ShardIndex, ShardCount) : null,
            };
            // Saved statistics are for merging, which GPTQ cannot do: refuse before the run, not after it.
            if (StatisticsPath is not null) StatisticsMerger.RefuseGptq(InputObject.Plan, InputObject.Path);
            var (statistics, report) = Calibrator.Run(InputObject, options, progress, StopToken);
            var saved = StatisticsPath is null ? null : SaveStatistics(statistics, report);
            if (ReportVariable is not null) SessionState.PSVariable.Set(ReportVariable, report);
            if (options.Shard is not null)
            {
                // One shard's warnings (idle experts, few sequences) are about part of the data; the merge reports the whole.
                foreach (var warning in report.Warnings) WriteVerbose($"Shard {ShardIndex}: {warning}");
                WriteObject(CalibrationShardInfo.Of(saved!));
                return;
            }
            foreach (var warning in report.Warnings) WriteWarning(warning);
            foreach (var coverage in report.ExpertCoverage) WriteVerbose(coverage.ToString());
            WriteVerbose($"Calibrated: {report}.");
            InputObject.Statistics = statistics;
            // GPTQ quantizes the weights layer by layer on the same data, with the activation scales just measured.
            InputObject.WeightSolutions = WeightCalibration.Run(InputObject, options, null, StopToken);
            if (InputObject.WeightSolutions is { } solutions)
            {
                WriteVerbose($"GPTQ solved {solutions.Count} NVFP4 weight(s) with {InputObject.Plan.Algorithm}.");
                foreach (var warning in solutions.Values.SelectMany(s => s.Warnings)) WriteWarning(warning);
            }
            InputObject.CalibrationReport = report;
            WriteObject(InputObject);
        }, progress.Complete);
    }

    private SavedStatistics SaveStatistics(CalibrationStatistics statistics, CalibrationReport report)
    {
        string path = ResolvePath(StatisticsPath!);
        var saved = SavedStatistics.Of(InputObject, statistics, report) with { Path = path };
        CalibrationStatisticsFile.Save(path, saved);
        WriteVerbose($"Saved the statistics of {report.Split} to '{path}'.");
        return saved;
    }

}
