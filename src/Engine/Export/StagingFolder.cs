namespace ModelOptPS.Engine.Export;

/// <summary>
/// The hidden sibling folder <c>.&lt;name&gt;.partial-&lt;guid&gt;</c> an export is written into. It holds a marker file that
/// stays open with an exclusive lock while the export runs: the marker proves the folder is ours (so a later export may
/// delete what a killed one left), and the lock (released by the kernel when the process dies, however it dies) tells
/// a live export's folder from a leftover. Deleted on dispose unless it was moved into place.
/// </summary>
internal sealed class StagingFolder : IDisposable
{
    public const string MarkerName = ".modeloptps-staging";

    private FileStream? _marker;

    private StagingFolder(string path, FileStream marker)
    {
        Path = path;
        _marker = marker;
    }

    public string Path { get; }

    public static StagingFolder Create(string target)
    {
        string path = ExportLeftovers.SiblingPath(target, ExportLeftovers.PartialTag, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        var marker = new FileStream(System.IO.Path.Combine(path, MarkerName), FileMode.CreateNew, FileAccess.Write, FileShare.None);
        return new StagingFolder(path, marker);
    }

    /// <summary>True when another live export holds <paramref name="folder"/>'s marker.</summary>
    public static bool IsInUse(string folder)
    {
        try
        {
            using var probe = new FileStream(System.IO.Path.Combine(folder, MarkerName), FileMode.Open, FileAccess.Read, FileShare.None);
            return false;
        }
        catch (FileNotFoundException) { return false; }
        catch (IOException) { return true; }
    }

    public static bool HasMarker(string folder) => File.Exists(System.IO.Path.Combine(folder, MarkerName));

    /// <summary>Removes the marker once the manifest is written: from here on the folder is a complete export.</summary>
    public void Seal()
    {
        _marker?.Dispose();
        _marker = null;
        File.Delete(System.IO.Path.Combine(Path, MarkerName));
    }

    public void Dispose()
    {
        _marker?.Dispose();
        _marker = null;
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
