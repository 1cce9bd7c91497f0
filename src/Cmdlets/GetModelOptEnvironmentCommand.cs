using System.Collections;
using System.Management.Automation;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ModelOptPS.Engine.Torch;

namespace ModelOptPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Reports the versions, CPU capabilities and libtorch state ModelOptPS runs with.</para>
/// <para type="description">Without -LoadTorch nothing native is loaded: the report says whether libtorch is
/// already loaded in this session. With -LoadTorch, libtorch is loaded and proven by a tiny computation (casting
/// 1.0 and 448.0 to float8_e4m3fn); a failure is a terminating error with id TorchNotAvailable.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "ModelOptEnvironment")]
[OutputType(typeof(ModelOptEnvironment))]
public sealed class GetModelOptEnvironmentCommand : ModelOptCmdlet
{
    /// <summary>Load libtorch (if not yet loaded) and check it computes.</summary>
    [Parameter]
    public SwitchParameter LoadTorch { get; set; }

    protected override void EndProcessing()
    {
        TimeSpan? selfTest = null;
        if (LoadTorch)
        {
            WriteVerbose("Loading libtorch and casting 1.0 and 448.0 to float8_e4m3fn.");
            RunEngine("Loading libtorch and running its self-test", null, () => selfTest = TorchRuntime.RunSelfTest(), terminating: true);
        }
        WriteObject(Describe(TorchRuntime.GetInfo(), selfTest));
    }

    private ModelOptEnvironment Describe(TorchRuntimeInfo torch, TimeSpan? selfTest) => new()
    {
        ModuleVersion = MyInvocation.MyCommand.Module?.Version?.ToString()
                        ?? typeof(GetModelOptEnvironmentCommand).Assembly.GetName().Version?.ToString() ?? "",
        PowerShellVersion = (SessionState.PSVariable.GetValue("PSVersionTable") as Hashtable)?["PSVersion"]?.ToString() ?? "",
        DotNetVersion = RuntimeInformation.FrameworkDescription,
        OperatingSystem = RuntimeInformation.OSDescription,
        ProcessorCount = Environment.ProcessorCount,
        Avx2 = Avx2.IsSupported,
        Avx512F = Avx512F.IsSupported,
        Vector256Accelerated = Vector256.IsHardwareAccelerated,
        Vector512Accelerated = Vector512.IsHardwareAccelerated,
        VectorByteWidth = Vector<byte>.Count,
        TorchSharpVersion = torch.TorchSharpVersion,
        LibTorchVersion = torch.LibTorchVersion,
        TorchLoaded = torch.IsLoaded,
        TorchThreads = torch.Threads,
        TorchNativeDirectory = torch.NativeDirectory,
        LibStdCxxShim = torch.StdCxxShimUsed,
        TorchSelfTestMilliseconds = selfTest?.TotalMilliseconds,
    };
}

/// <summary>What <c>Get-ModelOptEnvironment</c> returns.</summary>
public sealed class ModelOptEnvironment
{
    public string ModuleVersion { get; init; } = "";

    public string PowerShellVersion { get; init; } = "";

    public string DotNetVersion { get; init; } = "";

    public string OperatingSystem { get; init; } = "";

    public int ProcessorCount { get; init; }

    public bool Avx2 { get; init; }

    public bool Avx512F { get; init; }

    public bool Vector256Accelerated { get; init; }

    public bool Vector512Accelerated { get; init; }

    /// <summary>Width of <c>Vector&lt;T&gt;</c> in bytes, as the JIT chose it.</summary>
    public int VectorByteWidth { get; init; }

    public string TorchSharpVersion { get; init; } = "";

    /// <summary>Null until libtorch is loaded.</summary>
    public string? LibTorchVersion { get; init; }

    public bool TorchLoaded { get; init; }

    /// <summary>libtorch's intra-op threads; null until libtorch is loaded.</summary>
    public int? TorchThreads { get; init; }

    /// <summary>Where libLibTorchSharp.so and libtorch are loaded from.</summary>
    public string? TorchNativeDirectory { get; init; }

    /// <summary>Whether this system's libstdc++ needed the build's shim for libLibTorchSharp.so.</summary>
    public bool LibStdCxxShim { get; init; }

    /// <summary>How long the -LoadTorch check computation took; null without -LoadTorch.</summary>
    public double? TorchSelfTestMilliseconds { get; init; }
}
