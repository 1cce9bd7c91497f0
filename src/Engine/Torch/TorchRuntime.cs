using System.Diagnostics;
using System.Reflection;
using ModelOptPS.Engine.Errors;
using TorchSharp;

namespace ModelOptPS.Engine.Torch;

/// <summary>
/// The one way into libtorch: explicit, lazy, thread-safe and idempotent. Nothing loads libtorch until a caller needs
/// it (importing the PowerShell module does not), and a failure is a <see cref="ModelOptException"/>
/// (<c>TorchNotAvailable</c>) that says what is missing, instead of TorchSharp's stdout message and native copying.
/// </summary>
public static class TorchRuntime
{
    public const string NotAvailableErrorId = "TorchNotAvailable";
    public const string SelfTestFailedErrorId = "TorchSelfTestFailed";

    private static readonly Lock Gate = new();
    private static volatile bool s_loaded;

    public static bool IsLoaded => s_loaded;

    /// <summary>Loads libtorch on first call and sets its thread count; later calls return at once.</summary>
    /// <exception cref="ModelOptException">TorchNotAvailable. A later call tries again (e.g. after the natives were laid out).</exception>
    public static void EnsureLoaded()
    {
        if (s_loaded)
            return;
        lock (Gate)
        {
            if (s_loaded)
                return;
            LibTorchSharpNatives.Load();
            InitializeTorchSharp();
            TorchThreads.Configure();
            s_loaded = true;
        }
    }

    /// <summary>Versions and state of the torch runtime. Does not load libtorch.</summary>
    public static TorchRuntimeInfo GetInfo()
    {
        string? directory = LibTorchSharpNatives.FindDirectory();
        bool loaded = s_loaded;
        return new TorchRuntimeInfo(
            TorchSharpVersion: TorchSharpVersion(),
            LibTorchVersion: loaded ? torch.__version__ : null,
            IsLoaded: loaded,
            Threads: loaded ? torch.get_num_threads() : null,
            NativeDirectory: directory,
            StdCxxShimUsed: directory is not null && File.Exists(Path.Combine(directory, LibTorchSharpNatives.StdCxxShimFileName)));
    }

    /// <summary>
    /// Proves libtorch computes: casts 1.0f and 448f to float8_e4m3fn and checks the bytes (0x38, 0x7E).
    /// Loads libtorch if needed; returns how long the computation took.
    /// </summary>
    /// <exception cref="ModelOptException">TorchNotAvailable, or TorchSelfTestFailed if the bytes are wrong.</exception>
    public static TimeSpan RunSelfTest()
    {
        EnsureLoaded();
        var clock = Stopwatch.StartNew();
        byte[] bytes = TorchFloat8.ToE4M3FnBytes([1.0f, 448f]);
        clock.Stop();
        if (bytes is not [0x38, 0x7E])
        {
            throw new ModelOptException(SelfTestFailedErrorId, ErrorKind.InvalidOperation,
                $"libtorch loaded but cast 1.0 and 448.0 to float8_e4m3fn as {Convert.ToHexString(bytes)}, not 387E.");
        }
        return clock.Elapsed;
    }

    internal static ModelOptException NotAvailable(string message, Exception? inner = null) =>
        new(NotAvailableErrorId, ErrorKind.InvalidOperation, message, inner: inner);

    private static void InitializeTorchSharp()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) // Whatever TorchSharp throws while initialising, libtorch is unusable; say why.
        {
            throw NotAvailable($"libLibTorchSharp.so loaded, but TorchSharp could not initialise libtorch: {e.GetBaseException().Message}", e);
        }
    }

    private static string TorchSharpVersion()
    {
        Assembly assembly = typeof(torch).Assembly;
        string? informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        return informational?.Split('+')[0] ?? assembly.GetName().Version?.ToString() ?? "unknown";
    }
}
