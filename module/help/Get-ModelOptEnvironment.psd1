# Help for Get-ModelOptEnvironment; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Reports the versions, CPU features and libtorch state that ModelOptPS uses.'

    Description  = @'
Get-ModelOptEnvironment returns one object that describes where ModelOptPS runs: the module, PowerShell and .NET
versions, the operating system, the processor count, the vector instructions the NVFP4 kernels can use (AVX2, AVX-512,
and the Vector<T> width the JIT chose), and the state of libtorch (TorchSharp), which calibration and the quality
measurement run on.

Without -LoadTorch nothing native is loaded: the report says whether libtorch is already loaded in this session, and
libtorch's own version and thread count stay empty until it is. With -LoadTorch, libtorch is loaded (if it is not
already) and proven by a tiny computation - casting 1.0 and 448.0 to float8_e4m3fn and checking the bytes - whose time
is reported. If libtorch cannot be loaded or computes wrongly, that is a terminating error that says what is missing.

Attach its output to bug reports.
'@

    Parameters   = @{
        LoadTorch = @'
Load libtorch if it is not loaded yet, and check that it computes. Without it the cmdlet loads nothing native and only
reports the libtorch state.
'@
    }

    Outputs      = @{
        'ModelOptPS.Cmdlets.ModelOptEnvironment' = @'
ModuleVersion, PowerShellVersion, DotNetVersion, OperatingSystem, ProcessorCount, Avx2, Avx512F,
Vector256Accelerated, Vector512Accelerated, VectorByteWidth, TorchSharpVersion, LibTorchVersion and TorchThreads (empty
until libtorch is loaded), TorchLoaded, TorchNativeDirectory (where libtorch is loaded from), LibStdCxxShim (whether
this system's libstdc++ needed the module's shim) and TorchSelfTestMilliseconds (with -LoadTorch).
'@
    }

    Examples     = @(
        @{
            Title   = 'Show the environment, loading nothing native'
            Code    = @'
Get-ModelOptEnvironment
'@
            Remarks = @'
Versions, CPU capabilities, and whether libtorch is loaded in this session. Fast, and safe on any machine.
'@
        }
        @{
            Title   = 'Check that libtorch loads and computes'
            Code    = @'
Get-ModelOptEnvironment -LoadTorch |
    Select-Object TorchLoaded, LibTorchVersion, TorchThreads, TorchSelfTestMilliseconds
'@
            Remarks = @'
Loads libtorch and runs its check computation. Run this first when calibration fails to start: a missing or
incompatible native library is a terminating error (TorchNotAvailable) that names what is missing.
'@
        }
        @{
            Title   = 'Save the environment for a bug report'
            Code    = @'
Get-ModelOptEnvironment | ConvertTo-Json | Set-Content ./modeloptps-environment.json
'@
            Remarks = @'
Writes the report as JSON to attach to an issue.
'@
        }
    )

    Notes        = @'
Error ids (terminating, with -LoadTorch only): TorchNotAvailable (libtorch or libLibTorchSharp cannot be loaded; the
message says what is missing), TorchSelfTestFailed (libtorch loaded but computed wrong bytes), NativeError or
InternalError for any other failure of the check.

Importing the module never loads libtorch; the cmdlets that need it (calibration, quality measurement) load it on first
use.
'@

    RelatedLinks = @('about_ModelOptPS')
}
