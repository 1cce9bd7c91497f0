using System.Reflection;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Errors;
using TorchSharp;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// Finds and loads TorchSharp's native library exactly where TorchSharp's own first attempt will look, so that attempt
/// succeeds and its fallback (which copies the natives into a cpu/ folder beside TorchSharp.dll and writes to stdout)
/// never runs. Touches <c>typeof(torch)</c> only: no TorchSharp type initializer runs here.
/// </summary>
internal static class LibTorchSharpNatives
{
    internal const string FileName = "libLibTorchSharp.so";

    /// <summary>Made by build/native/TorchSharpNative.targets, beside the library, only where libstdc++ needed it.</summary>
    internal const string StdCxxShimFileName = "libmodeloptps_stdcxx_shim.so";

    private static Assembly TorchSharpAssembly => typeof(torch).Assembly;

    /// <summary>
    /// Where the .NET loader looks for a TorchSharp P/Invoke: the folder of TorchSharp.dll (the module's flat publish
    /// folder) and the native folders of the app's deps.json (runtimes/linux-x64/native in test and bench output).
    /// </summary>
    internal static IReadOnlyList<string> SearchDirectories()
    {
        var directories = new List<string>();
        string? beside = Path.GetDirectoryName(TorchSharpAssembly.Location);
        if (!string.IsNullOrEmpty(beside))
            directories.Add(beside);
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string fromDeps)
            directories.AddRange(fromDeps.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return directories.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).Distinct().ToList();
    }

    /// <summary>The first search folder that holds libLibTorchSharp.so, or null.</summary>
    internal static string? FindDirectory() =>
        SearchDirectories().FirstOrDefault(d => File.Exists(Path.Combine(d, FileName)));

    /// <summary>
    /// Loads libLibTorchSharp.so (and through it libtorch) by name, as TorchSharp will, and keeps it loaded. Returns its
    /// folder, or null when the system's library path supplied it.
    /// </summary>
    /// <exception cref="ModelOptException">TorchNotAvailable, saying what is missing.</exception>
    internal static string? Load()
    {
        if (NativeLibrary.TryLoad("LibTorchSharp", TorchSharpAssembly, null, out _))
            return FindDirectory();

        string? directory = FindDirectory();
        if (directory is null)
        {
            throw TorchRuntime.NotAvailable(
                $"{FileName} is neither beside TorchSharp.dll nor in this application's native library folders " +
                $"({string.Join(", ", SearchDirectories())}). Build with build.ps1, which lays the natives out there.");
        }

        // The by-name load hides the loader's reason; loading by path reports it (e.g. a missing symbol version).
        string path = Path.Combine(directory, FileName);
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
        }
        catch (DllNotFoundException e)
        {
            string hint = e.Message.Contains("GLIBCXX_", StringComparison.Ordinal)
                ? " This system's libstdc++ is older than the one TorchSharp was built with; rebuild with build.ps1 on this " +
                  "system so that build/native/TorchSharpNative.targets patches the library and adds " + StdCxxShimFileName + "."
                : "";
            throw TorchRuntime.NotAvailable($"libtorch cannot be loaded from {directory}: {e.Message}{hint}", e);
        }
        throw TorchRuntime.NotAvailable($"{path} loads by path, but not by name as TorchSharp loads it.");
    }
}
