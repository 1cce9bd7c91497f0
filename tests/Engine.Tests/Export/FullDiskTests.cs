using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Export;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>An export onto a disk too small for it: its own error, nothing left behind, the source untouched.</summary>
public sealed class FullDiskTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [TmpfsFact]
    public void AFullDiskIsExportDiskFullAndLeavesNothing()
    {
        using var model = ExportFixture.Planned(_tmp, "qwen3_moe", "W4A16_NVFP4");
        string source = FolderSnapshot.Of(model.Path);
        long needed = ExportFixture.Export(model, _tmp).OutputSize;
        string disk = _tmp.Combine("disk");
        using (TmpfsFactAttribute.Mount(disk, needed / 2))
        {
            string target = Path.Combine(disk, "out");
            var ex = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, target, new ExportOptions()));
            Assert.Equal(ExportErrorIds.ExportDiskFull, ex.ErrorId);
            Assert.Equal(ErrorKind.WriteError, ex.Kind);
            Assert.Equal(target, ex.Path);
            Assert.Contains(target, ex.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(disk));
        }
        Assert.Equal(source, FolderSnapshot.Of(model.Path));
    }
}
