namespace ModelOptPS.BannedScalarApis;

/// <summary>Where the TorchSharp.dll that the projects compile against lies in the NuGet package cache.</summary>
public static class TorchSharpAssembly
{
    public static string InNuGetCache(string version)
    {
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(cache))
            cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var lib = Path.Combine(cache, "torchsharp", version, "lib");
        var dll = Directory.Exists(lib)
            ? Directory.GetDirectories(lib, "net*").Where(d => !Path.GetFileName(d).StartsWith("netstandard"))
                .OrderByDescending(d => Version.TryParse(Path.GetFileName(d)[3..], out var v) ? v : new Version())
                .Select(d => Path.Combine(d, "TorchSharp.dll")).FirstOrDefault(File.Exists)
            : null;
        return dll ?? throw new FileNotFoundException(
            $"TorchSharp {version} is not in the NuGet cache {cache}: restore the solution first (dotnet restore ModelOptPS.sln).");
    }
}
