using System.Security.Cryptography;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>Every file of a folder (hidden ones included) as relative path and SHA-256: equal snapshots, equal bytes.</summary>
internal static class FolderSnapshot
{
    public static string Of(string folder) => string.Join("\n",
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => $"{Path.GetRelativePath(folder, f)} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))}")
            .Order(StringComparer.Ordinal));

    /// <summary>The hidden <c>.&lt;name&gt;.*</c> folders an export to <paramref name="target"/> can leave.</summary>
    public static string[] Leftovers(string target) =>
        Directory.GetDirectories(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.*").Order(StringComparer.Ordinal).ToArray();

    public static void Copy(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string destination = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }
    }
}
