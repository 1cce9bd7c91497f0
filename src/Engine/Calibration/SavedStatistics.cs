using System.Reflection;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Calibration statistics with what a merge needs to trust them: the model and plan they were measured for
/// (<see cref="StatisticsFingerprints"/>), the sample split and shard, and where they came from. One
/// <see cref="CalibrationStatisticsFile"/> holds one.
/// </summary>
public sealed record SavedStatistics
{
    public required CalibrationStatistics Statistics { get; init; }

    public required CalibrationSplit Split { get; init; }

    public required string ModelFingerprint { get; init; }

    public required string PlanFingerprint { get; init; }

    /// <summary>The model's folder name and the plan's recipe, for messages.</summary>
    public required string Model { get; init; }

    public required string Recipe { get; init; }

    /// <summary>Where the text came from (the report's description).</summary>
    public required string Data { get; init; }

    /// <summary>Sequences these statistics cover.</summary>
    public required int Sequences { get; init; }

    /// <summary>Time the calibration took (summed over shards once merged).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>The file they were read from; null before they are saved.</summary>
    public string? Path { get; init; }

    /// <summary>The version of ModelOptPS that measured them.</summary>
    public string ToolVersion { get; init; } = CurrentToolVersion;

    public static string CurrentToolVersion { get; } =
        typeof(SavedStatistics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>What a calibration run of <paramref name="model"/> produced, ready to save.</summary>
    public static SavedStatistics Of(HFModel model, CalibrationStatistics statistics, CalibrationReport report)
    {
        var plan = model.RequirePlan();
        return new SavedStatistics
        {
            Statistics = statistics,
            Split = report.Split,
            ModelFingerprint = StatisticsFingerprints.Model(model),
            PlanFingerprint = StatisticsFingerprints.Plan(plan),
            Model = model.Name,
            Recipe = plan.RecipeName,
            Data = report.Data,
            Sequences = report.Samples,
            Duration = report.Duration,
        };
    }
}
