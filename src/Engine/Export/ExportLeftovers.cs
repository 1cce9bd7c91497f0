namespace ModelOptPS.Engine.Export;

/// <summary>
/// What a killed export can leave next to its target, and how the next export to that target cleans it up. Staging
/// folders (<c>.&lt;name&gt;.partial-*</c>) are removed when provably ours: empty, or holding the staging marker, or an
/// exact export by its manifest; never while a live export holds the marker's lock. A replaced export moved aside
/// (<c>.&lt;name&gt;.previous-*</c>) is put back when the target is missing (the kill came between the two renames of the
/// swap), else removed when it is still exactly the export its manifest lists. Anything else is left and reported.
/// </summary>
internal static class ExportLeftovers
{
    public const string PartialTag = "partial";
    public const string PreviousTag = "previous";

    /// <summary><c>.&lt;name&gt;.&lt;tag&gt;-&lt;suffix&gt;</c> next to <paramref name="target"/>.</summary>
    public static string SiblingPath(string target, string tag, string suffix) =>
        Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.{tag}-{suffix}");

    /// <summary>A previous-export name that sorts by when it was moved aside.</summary>
    public static string PreviousPath(string target) =>
        SiblingPath(target, PreviousTag, $"{DateTime.UtcNow:yyyyMMddHHmmssfffffff}-{Guid.NewGuid():N}");

    /// <summary>Recovers and cleans what interrupted exports left; returns one line per thing done or left.</summary>
    public static List<string> Recover(string target)
    {
        var notes = new List<string>();
        if (!Directory.Exists(Path.GetDirectoryName(target))) return notes;

        var previous = Siblings(target, PreviousTag);
        if (!Directory.Exists(target) && !File.Exists(target)
            && previous.LastOrDefault(p => ExportManifest.TryRead(p) is not null || IsEmpty(p)) is { } latest)
        {
            Directory.Move(latest, target);
            previous.Remove(latest);
            notes.Add($"Restored the export '{target}' from '{latest}', where an interrupted export had moved it aside.");
        }
        foreach (var folder in previous)
        {
            if (IsEmpty(folder) || IsExactExport(folder))
                Remove(folder, "an export that an interrupted export had already replaced", notes);
            else
                notes.Add($"Left '{folder}' in place: it is named like an export moved aside, but {NotOursReason(folder)}.");
        }
        foreach (var folder in Siblings(target, PartialTag))
        {
            if (StagingFolder.IsInUse(folder)) continue; // a live export's staging folder
            if (IsEmpty(folder) || StagingFolder.HasMarker(folder) || IsExactExport(folder))
                Remove(folder, "the unfinished folder of an interrupted export", notes);
            else
                notes.Add($"Left '{folder}' in place: it is named like an export's staging folder, but {NotOursReason(folder)}.");
        }
        return notes;
    }

    public static bool IsEmpty(string folder) => !Directory.EnumerateFileSystemEntries(folder).Any();

    private static bool IsExactExport(string folder) =>
        ExportManifest.TryRead(folder) is { } manifest && manifest.Unexpected(folder).Count == 0;

    private static string NotOursReason(string folder) =>
        ExportManifest.TryRead(folder) is { } manifest
            ? $"it holds what the export did not write ({Listing.Of(manifest.Unexpected(folder))})"
            : $"it has neither an export manifest nor a staging marker ({Listing.Of(Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).OfType<string>())})";

    private static void Remove(string folder, string what, List<string> notes)
    {
        Directory.Delete(folder, recursive: true);
        notes.Add($"Removed '{folder}', {what}.");
    }

    private static List<string> Siblings(string target, string tag)
    {
        string prefix = $".{Path.GetFileName(target)}.{tag}-";
        return new DirectoryInfo(Path.GetDirectoryName(target)!).EnumerateDirectories(prefix + "*")
            .Where(d => d.Name.StartsWith(prefix, StringComparison.Ordinal) && d.LinkTarget is null)
            .Select(d => d.FullName).Order(StringComparer.Ordinal).ToList();
    }
}
