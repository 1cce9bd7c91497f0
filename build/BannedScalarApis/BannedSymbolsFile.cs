namespace ModelOptPS.BannedScalarApis;

/// <summary>The committed list, build/BannedSymbols.txt, that Directory.Build.props gives every project's analyzer.</summary>
public static class BannedSymbolsFile
{
    /// <summary>Its path in the repository this program or test runs from (the folder above holding ModelOptPS.sln).</summary>
    public static string InRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ModelOptPS.sln"))) return Path.Combine(dir.FullName, "build", "BannedSymbols.txt");
        throw new DirectoryNotFoundException($"No ModelOptPS.sln above {AppContext.BaseDirectory}.");
    }
}
