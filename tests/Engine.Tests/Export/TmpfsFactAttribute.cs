using System.Diagnostics;

namespace ModelOptPS.Engine.Tests.Export;

/// <summary>
/// A fact that needs a small file system of its own: it mounts a size-limited tmpfs, which takes root (or
/// CAP_SYS_ADMIN). xunit 2 has no runtime skip, so the attribute probes once, at discovery, by mounting and unmounting
/// a tmpfs, and marks the test skipped with the reason when that is not possible.
/// </summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(Probe);

    public TmpfsFactAttribute()
    {
        if (WhyNot.Value is { } reason) Skip = reason;
    }

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> at <paramref name="folder"/>; dispose to unmount.</summary>
    public static IDisposable Mount(string folder, long bytes)
    {
        Directory.CreateDirectory(folder);
        string error = Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", folder);
        if (error.Length > 0) throw new InvalidOperationException($"mount failed: {error}");
        return new Mounted(folder);
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "needs Linux to mount a size-limited tmpfs";
        if (!Environment.IsPrivilegedProcess) return "needs root to mount a size-limited tmpfs (run the tests as root to include it)";
        string probe = Path.Combine(Path.GetTempPath(), "modeloptps-tmpfs-probe-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            using (Mount(probe, 64 * 1024)) { }
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return $"mounting a tmpfs is not permitted here ({ex.Message})";
        }
        finally
        {
            try { Directory.Delete(probe); } catch (IOException) { }
        }
    }

    /// <summary>Runs a command; returns its error output, or the exit code when it failed silently.</summary>
    private static string Run(string command, params string[] args)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? "" : error.Trim() is { Length: > 0 } e ? e : $"exit code {process.ExitCode}";
    }

    private sealed class Mounted(string folder) : IDisposable
    {
        public void Dispose()
        {
            string error = Run("umount", folder);
            if (error.Length > 0) throw new InvalidOperationException($"umount {folder} failed: {error}");
        }
    }
}
