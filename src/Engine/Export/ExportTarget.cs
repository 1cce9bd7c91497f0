using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The -Force rule and the swap. A target may be replaced only when it is an empty folder or a previous export of this
/// tool, exactly as its manifest lists it; anything else is an error and nothing is touched. A replaced export stays in
/// place until the new one is complete, is moved aside by one rename, and comes back if the second rename fails: at no
/// point are both gone (a kill between the renames leaves it as <c>.&lt;name&gt;.previous-*</c>, which the next export
/// puts back).
/// </summary>
internal static class ExportTarget
{
    /// <summary>Throws unless <paramref name="target"/> is absent, empty, or (with <paramref name="force"/>) our export.</summary>
    public static void CheckReplaceable(string target, bool force)
    {
        if (File.Exists(target))
            throw new ModelOptException("TargetIsFile", ErrorKind.InvalidArgument, $"'{target}' is a file, not a folder; nothing was changed.", target);
        if (!Directory.Exists(target) || ExportLeftovers.IsEmpty(target)) return;
        if (!force)
            throw new ModelOptException("TargetExists", ErrorKind.ResourceExists,
                $"The export folder '{target}' exists and is not empty; choose another folder, or use -Force to replace a previous export.", target);
        var manifest = ExportManifest.TryRead(target)
            ?? throw NotAnExport(target, $"it has no {ExportManifest.FileName}, so it is not an export of this tool " +
                                         $"(it holds {Listing.Of(Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName).OfType<string>())})");
        if (manifest.Unexpected(target) is { Count: > 0 } unexpected)
            throw NotAnExport(target, $"it holds what the export did not write: {Listing.Of(unexpected)}");
    }

    private static ModelOptException NotAnExport(string target, string why) =>
        new(ExportErrorIds.TargetNotAnExport, ErrorKind.ResourceExists,
            $"-Force replaces only an empty folder or a previous export of this tool, and '{target}' is neither: {why}. " +
            "Nothing was changed; move those files away or choose another folder.", target);

    /// <summary>Renames the finished staging folder to <paramref name="target"/>, replacing what is there.</summary>
    public static void MoveIntoPlace(string staging, string target, bool force, Action<ExportStep> step)
    {
        CheckReplaceable(target, force); // again: the user may have put a file there while the export ran
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            step(ExportStep.MovedIntoPlace);
            return;
        }
        string previous = ExportLeftovers.PreviousPath(target);
        Directory.Move(target, previous);
        step(ExportStep.TargetMovedAside);
        try
        {
            Directory.Move(staging, target);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            PutBack(previous, target, ex);
            throw;
        }
        step(ExportStep.MovedIntoPlace);
        Directory.Delete(previous, recursive: true);
        step(ExportStep.PreviousRemoved);
    }

    private static void PutBack(string previous, string target, Exception swapFailure)
    {
        try
        {
            Directory.Move(previous, target);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ModelOptException(ExportErrorIds.ExportWriteFailed, ErrorKind.WriteError,
                $"Moving the new export into '{target}' failed ({swapFailure.Message}), and so did putting the previous export back " +
                $"({ex.Message}). The previous export is intact in '{previous}'; the next export to '{target}' puts it back.",
                previous, swapFailure);
        }
    }
}
