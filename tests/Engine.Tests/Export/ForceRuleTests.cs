using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Verification;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>-Force replaces only an empty folder or a previous export exactly as its manifest lists it.</summary>
public sealed class ForceRuleTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static ExportResult Export(HFModel model, string target, bool force = true, ExportFormat format = ExportFormat.ModelOpt) =>
        CheckpointExporter.Export(model, target, new ExportOptions { Force = force, Format = format });

    [Fact]
    public void APreviousExportIsReplacedAndTheManifestDoesNotDisturbTheVerifier()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string target = _tmp.Combine("out");
        Export(model, target, force: false, ExportFormat.CompressedTensors);
        Assert.True(File.Exists(Path.Combine(target, ExportManifest.FileName)));

        var result = Export(model, target);
        Assert.Equal(ExportFormat.ModelOpt, result.Format);
        Assert.True(File.Exists(Path.Combine(target, "hf_quant_config.json")));
        Assert.DoesNotContain(ExportManifest.FileName, result.Files);
        Assert.Empty(FolderSnapshot.Leftovers(target));
        Assert.DoesNotContain(result.Warnings, w => w.Contains(target, StringComparison.Ordinal));
        Assert.True(QuantFormatVerifier.Verify(target, model.Path).Passed);
    }

    [Theory]
    [InlineData("user file")]
    [InlineData("user folder")]
    [InlineData("edited file")]
    [InlineData("no manifest")]
    [InlineData("foreign manifest")]
    [InlineData("broken manifest")]
    public void AnythingButAnExactExportIsRefusedAndLeftAsItWas(string change)
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string target = _tmp.Combine("out");
        Export(model, target, force: false);
        string manifest = Path.Combine(target, ExportManifest.FileName);
        switch (change)
        {
            case "user file": File.WriteAllText(Path.Combine(target, "notes.md"), "mine"); break;
            case "user folder": Directory.CreateDirectory(Path.Combine(target, "eval")); break;
            case "edited file": File.AppendAllText(Path.Combine(target, "tokenizer_config.json"), " "); break;
            case "no manifest": File.Delete(manifest); break;
            case "foreign manifest": File.WriteAllText(manifest, "{\"producer\":\"someone else\",\"files\":{}}"); break;
            case "broken manifest": File.WriteAllText(manifest, "{\"producer\":\"ModelOptPS\",\"files\":{\"config.json\":\"big\"}}"); break;
        }
        string before = FolderSnapshot.Of(target);
        var ex = Assert.Throws<ModelOptException>(() => Export(model, target));
        Assert.Equal(ExportErrorIds.TargetNotAnExport, ex.ErrorId);
        Assert.Equal(ErrorKind.ResourceExists, ex.Kind);
        Assert.Equal(target, ex.Path);
        if (change is "user file" or "user folder" or "edited file")
            Assert.Contains(change switch { "user file" => "notes.md", "user folder" => "eval/", _ => "tokenizer_config.json (changed" }, ex.Message);
        Assert.Equal(before, FolderSnapshot.Of(target));
        Assert.True(change != "user folder" || Directory.Exists(Path.Combine(target, "eval")));
        Assert.Empty(FolderSnapshot.Leftovers(target));
    }

    [Fact]
    public void AnEmptyFolderIsFilledAndAFileIsNeverReplaced()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string empty = _tmp.Combine("empty");
        Directory.CreateDirectory(empty);
        Export(model, empty, force: false);
        Assert.True(File.Exists(Path.Combine(empty, "model.safetensors")));

        string file = _tmp.Combine("file");
        File.WriteAllText(file, "mine");
        foreach (bool force in new[] { false, true })
            Assert.Equal("TargetIsFile", Assert.Throws<ModelOptException>(() => Export(model, file, force)).ErrorId);
        Assert.Equal("mine", File.ReadAllText(file));
    }

    [Fact]
    public void AKilledSwapIsUndoneByTheNextExportAndForeignLeftoversAreKept()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string target = _tmp.Combine("out");
        string movedAside = _tmp.Combine(".out.previous-20260101000000");
        Export(model, movedAside, force: false, ExportFormat.CompressedTensors);
        string aside = FolderSnapshot.Of(movedAside);
        string strange = _tmp.Combine(".out.partial-0123");
        Directory.CreateDirectory(strange);
        File.WriteAllText(Path.Combine(strange, "mine.txt"), "mine");
        string edited = _tmp.Combine(".out.previous-19990101000000");
        Export(model, edited, force: false);
        File.WriteAllText(Path.Combine(edited, "added.txt"), "mine");

        // Without -Force: the export moved aside comes back, so the target exists and is refused; the others stay.
        var refused = Assert.Throws<ModelOptException>(() => Export(model, target, force: false));
        Assert.Equal("TargetExists", refused.ErrorId);
        Assert.Contains($"Restored the export '{target}' from '{movedAside}'", refused.Message);
        Assert.Equal(aside, FolderSnapshot.Of(target));
        Assert.Equal([strange, edited], FolderSnapshot.Leftovers(target));

        var result = Export(model, target);
        Assert.Contains(result.Warnings, w => w.StartsWith($"Left '{strange}'", StringComparison.Ordinal) && w.Contains("mine.txt"));
        Assert.Contains(result.Warnings, w => w.StartsWith($"Left '{edited}'", StringComparison.Ordinal) && w.Contains("added.txt"));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(strange, "mine.txt")));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(edited, "added.txt")));
        Assert.True(QuantFormatVerifier.Verify(target, model.Path).Passed);
    }

    [Fact]
    public void WhenTheSwapFailsThePreviousExportComesBack()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string target = _tmp.Combine("out");
        Export(model, target, force: false, ExportFormat.CompressedTensors);
        string previous = FolderSnapshot.Of(target);
        string stolen = _tmp.Combine("stolen");

        // The second rename fails (the staging folder vanished): the export moved aside is renamed back.
        var options = new ExportOptions { Force = true, StepReached = StealStagingAt(target, stolen, blockTarget: false) };
        var failed = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, options));
        Assert.Equal(ExportErrorIds.ExportWriteFailed, failed.ErrorId);
        Assert.Equal(ErrorKind.WriteError, failed.Kind);
        Assert.Equal(previous, FolderSnapshot.Of(target));
        Assert.Empty(FolderSnapshot.Leftovers(target));

        // Both renames fail (something took the target's name): the error says where the export is, and once the
        // name is free again the next export puts it back before replacing it.
        Directory.Delete(stolen, recursive: true);
        options = options with { StepReached = StealStagingAt(target, stolen, blockTarget: true) };
        failed = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, options));
        Assert.Equal(ExportErrorIds.ExportWriteFailed, failed.ErrorId);
        string movedAside = Assert.Single(FolderSnapshot.Leftovers(target));
        Assert.Equal(movedAside, failed.Path);
        Assert.Contains(movedAside, failed.Message);
        Assert.Equal(previous, FolderSnapshot.Of(movedAside));
        File.Delete(target);
        var result = Export(model, target);
        Assert.Contains(result.Warnings, w => w.StartsWith($"Restored the export '{target}' from '{movedAside}'", StringComparison.Ordinal));
        Assert.Empty(FolderSnapshot.Leftovers(target));
        Assert.True(QuantFormatVerifier.Verify(target, model.Path).Passed);
    }

    /// <summary>Once the target is moved aside, moves the staging folder away (and, if asked, puts a file at the target).</summary>
    private static Action<ExportStep> StealStagingAt(string target, string stolen, bool blockTarget) => step =>
    {
        if (step != ExportStep.TargetMovedAside) return;
        Directory.Move(FolderSnapshot.Leftovers(target).Single(l => l.Contains(".partial-", StringComparison.Ordinal)), stolen);
        if (blockTarget) File.WriteAllText(target, "in the way");
    };

    [Fact]
    public void ALiveExportsStagingFolderIsNotTouched()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        string target = _tmp.Combine("out");
        using var live = StagingFolder.Create(target);
        var result = Export(model, target, force: false);
        Assert.True(Directory.Exists(live.Path));
        Assert.DoesNotContain(result.Warnings, w => w.Contains(live.Path, StringComparison.Ordinal));
    }
}
