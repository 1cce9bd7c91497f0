using System.Diagnostics;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Verification;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// Fault injection: a child process (tests/ExportKillHost) exports a tiny checkpoint and SIGKILLs itself at a chosen
/// step, spread over the whole export (staging, tensors across shards, configs, copied files, manifest, both renames
/// of the swap, the removal of the replaced export). After each kill the target is absent, or the previous export
/// byte for byte (in place, or moved aside for the next export to put back), or the finished new export: never a
/// folder that looks complete and is not. The next export to the same target then succeeds, reports and cleans the
/// leftovers, and the result verifies.
/// </summary>
public sealed class KillPointTests(KillPointTests.Setup setup) : IClassFixture<KillPointTests.Setup>
{
    /// <summary>Source, the expected new export and a different previous export (compressed-tensors), made once.</summary>
    public sealed class Setup : IDisposable
    {
        public Setup()
        {
            Source = TinyCheckpoints.Write("qwen3_moe", Tmp.Combine("src"), maxShardBytes: 100_000);
            var fresh = new List<ExportStep>();
            Expected = FolderSnapshot.Of(Export(Tmp.Combine("expected"), ExportFormat.ModelOpt, force: false, fresh.Add));
            Previous = Export(Tmp.Combine("previous"), ExportFormat.CompressedTensors, force: false);
            PreviousSnapshot = FolderSnapshot.Of(Previous);
            var replace = new List<ExportStep>();
            string replaced = Tmp.Combine("replaced");
            FolderSnapshot.Copy(Previous, replaced);
            Export(replaced, ExportFormat.ModelOpt, force: true, replace.Add);
            FreshSteps = fresh;
            ReplaceSteps = replace;
        }

        public TempFolder Tmp { get; } = new();
        public string Source { get; }
        public string Expected { get; }
        public string Previous { get; }
        public string PreviousSnapshot { get; }
        internal IReadOnlyList<ExportStep> FreshSteps { get; }
        internal IReadOnlyList<ExportStep> ReplaceSteps { get; }

        internal string Export(string target, ExportFormat format, bool force, Action<ExportStep>? step = null, List<string>? warnings = null)
        {
            using var model = ModelImporter.Import(Source);
            model.Plan = QuantPlanner.Plan(model, Presets.Get("W4A16_NVFP4").WithModulePatterns([], [], QuantizerFormat.Nvfp4, weightOnly: true));
            var result = CheckpointExporter.Export(model, target, new ExportOptions { Format = format, Force = force, MaxShardBytes = 100_000, StepReached = step });
            warnings?.AddRange(result.Warnings);
            return result.Path;
        }

        public void Dispose() => Tmp.Dispose();
    }

    /// <summary>Each kill point: a step and where among its occurrences (0 = first, 1 = last).</summary>
    public static TheoryData<bool, string, double> Points()
    {
        var data = new TheoryData<bool, string, double>();
        foreach (bool replace in new[] { false, true })
        {
            data.Add(replace, nameof(ExportStep.StagingCreated), 0);
            foreach (double at in new[] { 0, 0.5, 1 }) data.Add(replace, nameof(ExportStep.TensorWritten), at);
            data.Add(replace, nameof(ExportStep.ShardsComplete), 0);
            data.Add(replace, nameof(ExportStep.ConfigsWritten), 0);
            data.Add(replace, nameof(ExportStep.FileCopied), 0);
            data.Add(replace, nameof(ExportStep.FileCopied), 1);
            data.Add(replace, nameof(ExportStep.ManifestWritten), 0);
            data.Add(replace, nameof(ExportStep.MovedIntoPlace), 0);
        }
        data.Add(true, nameof(ExportStep.TargetMovedAside), 0);
        data.Add(true, nameof(ExportStep.PreviousRemoved), 0);
        return data;
    }

    [Fact]
    public void TheKillPointsCoverEveryStepOfAnExport()
    {
        var covered = Points().Select(row => Enum.Parse<ExportStep>((string)row[1])).ToHashSet();
        Assert.Equal(Enum.GetValues<ExportStep>().ToHashSet(), covered);
        Assert.True(setup.FreshSteps.Count(s => s == ExportStep.TensorWritten) > 10); // kills land in different shards
        Assert.Contains(ExportStep.PreviousRemoved, setup.ReplaceSteps);
    }

    [Theory]
    [MemberData(nameof(Points))]
    public void AKilledExportLosesNothingAndTheNextOneCleansUp(bool replace, string stepName, double at)
    {
        var step = Enum.Parse<ExportStep>(stepName);
        var steps = replace ? setup.ReplaceSteps : setup.FreshSteps;
        int occurrence = Math.Max(1, (int)Math.Ceiling(at * steps.Count(s => s == step)));
        string target = setup.Tmp.Combine($"{(replace ? "replace" : "fresh")}-{step}-{occurrence}");
        if (replace) FolderSnapshot.Copy(setup.Previous, target);

        string output = RunKilled(target, $"{step}:{occurrence}", replace);
        Assert.Contains($"killed at {step}:{occurrence}", output);

        // What the kill left: never a target that is neither the old export nor the complete new one.
        var leftovers = FolderSnapshot.Leftovers(target);
        if (!Directory.Exists(target))
        {
            Assert.True(!replace || step == ExportStep.TargetMovedAside, $"{step}: the target vanished");
            if (replace)
                Assert.Equal(setup.PreviousSnapshot, FolderSnapshot.Of(Assert.Single(leftovers, l => l.Contains(".previous-"))));
        }
        else
        {
            string now = FolderSnapshot.Of(target);
            bool swapped = step is ExportStep.MovedIntoPlace or ExportStep.PreviousRemoved;
            Assert.Equal(swapped ? setup.Expected : setup.PreviousSnapshot, now);
        }
        bool clean = step == ExportStep.PreviousRemoved || (step == ExportStep.MovedIntoPlace && !replace);
        Assert.Equal(clean, leftovers.Length == 0);

        // The next export to the same target: succeeds, says what it recovered and removed, leaves nothing behind.
        var warnings = new List<string>();
        setup.Export(target, ExportFormat.ModelOpt, force: true, warnings: warnings);
        foreach (var leftover in leftovers)
            Assert.Contains(warnings, w => w.Contains(leftover, StringComparison.Ordinal));
        Assert.Empty(FolderSnapshot.Leftovers(target));
        Assert.Equal(setup.Expected, FolderSnapshot.Of(target));
        Assert.True(QuantFormatVerifier.Verify(target, setup.Source).Passed);
    }

    private string RunKilled(string target, string killAt, bool force)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "ModelOptPS.ExportKillHost.dll"), setup.Source, target, killAt })
            start.ArgumentList.Add(arg);
        if (force) start.ArgumentList.Add("--force");
        using var child = Process.Start(start)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        Assert.True(child.WaitForExit(TimeSpan.FromSeconds(60)), "the export child did not finish");
        Assert.True(child.ExitCode == 128 + 9, $"expected SIGKILL (137), got {child.ExitCode}: {stdout.Result} {stderr.Result}");
        return stdout.Result;
    }
}
