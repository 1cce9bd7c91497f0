using System.Management.Automation;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Merges calibration statistics files into the model's statistics.</para>
/// <para type="description">Reads the files Invoke-Calibration -StatisticsPath wrote (the shards of one sample split,
/// or one whole run), checks them against the model, its plan and each other, adds them up into the statistics of one
/// run over all samples and attaches them with a report, for Export-Nvfp4 or Measure-QuantQuality.</para>
/// </summary>
[Cmdlet(VerbsData.Merge, "CalibrationStatistics")]
[OutputType(typeof(HFModel))]
public sealed class MergeCalibrationStatisticsCommand : ModelOptCmdlet
{
    /// <summary>The model from Set-QuantConfig, with the plan the shards were calibrated for.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public HFModel InputObject { get; set; } = null!;

    /// <summary>The statistics files: every shard of one split, or one file.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    /// <summary>Also save the merged statistics as one file.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutputPath { get; set; }

    /// <summary>Name of a variable (without $) that receives the merged report.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ReportVariable { get; set; }

    protected override void ProcessRecord()
    {
        // No target: a file's error names the file (the engine's Path), a model's error the model's folder.
        RunEngine($"Merging calibration statistics into {InputObject.Name}", null, () =>
        {
            var files = ResolveFiles().Select(path =>
            {
                WriteVerbose($"Reading '{path}'.");
                return CalibrationStatisticsFile.Load(path);
            }).ToList();
            var (statistics, report) = StatisticsMerger.Merge(InputObject, files);
            foreach (var warning in report.Warnings) WriteWarning(warning);
            foreach (var coverage in report.ExpertCoverage) WriteVerbose(coverage.ToString());
            WriteVerbose($"Merged {files.Count} file(s): {report}.");
            if (OutputPath is not null)
            {
                string output = ResolvePath(OutputPath);
                CalibrationStatisticsFile.Save(output, SavedStatistics.Of(InputObject, statistics, report));
                WriteVerbose($"Saved the merged statistics to '{output}'.");
            }
            InputObject.Statistics = statistics;
            InputObject.WeightSolutions = null;
            InputObject.CalibrationReport = report;
            if (ReportVariable is not null) SessionState.PSVariable.Set(ReportVariable, report);
            WriteObject(InputObject);
        });
    }

    /// <summary>Each -Path as a file-system path; a wildcard expands to its matches, and must match something.</summary>
    private IEnumerable<string> ResolveFiles()
    {
        foreach (string path in Path)
        {
            if (!WildcardPattern.ContainsWildcardCharacters(path))
            {
                yield return ResolvePath(path);
                continue;
            }
            var matches = new List<string>();
            try
            {
                matches.AddRange(SessionState.Path.GetResolvedProviderPathFromPSPath(path, out _));
            }
            catch (ItemNotFoundException)
            {
            }
            if (matches.Count == 0)
                throw new ModelOptException(CalibrationErrorIds.StatisticsFileNotFound, ErrorKind.ObjectNotFound, $"No calibration statistics file matches '{path}'.", path);
            foreach (string match in matches.Order(StringComparer.Ordinal)) yield return match;
        }
    }
}
