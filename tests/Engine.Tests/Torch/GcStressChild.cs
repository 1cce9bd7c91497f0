using System.Diagnostics;
using System.Reflection;

namespace ModelOptPS.Engine.Tests.Torch;

/// <summary>
/// Runs tests/GcStress in its own process: the race it hunts can crash the process, and the settings it needs (a small
/// gen0 budget, no tiered compilation) must be in place before the runtime starts.
/// </summary>
internal static class GcStressChild
{
    /// <summary>Small enough that the main thread's own allocations collect often too, besides the forced collections.</summary>
    private const string Gen0Budget = "0x100000";

    public sealed record Outcome(int ExitCode, string Output, TimeSpan Duration);

    /// <summary>Runs a mode ("real" or "canary") for about <paramref name="seconds"/>; kills it after a minute more.</summary>
    public static Outcome Run(string mode, int seconds)
    {
        string child = ChildPath();
        Assert.True(File.Exists(child), $"{child} is missing: build the solution (build.ps1 -Task Build) first");
        var start = new ProcessStartInfo(DotnetHost(), [child, mode, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["DOTNET_GCgen0size"] = Gen0Budget;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(seconds + 60)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        return new Outcome(process.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
    }

    /// <summary>Where the build put the child: tests/GcStress's output for this configuration (see the test project file).</summary>
    private static string ChildPath() =>
        typeof(GcStressChild).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "GcStressChild").Value!;

    /// <summary>The dotnet host that runs these tests (dotnet test exports its path), else the one on PATH.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
}
