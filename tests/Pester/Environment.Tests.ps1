#Requires -Version 7.4
# Get-ModelOptEnvironment and how the module loads libtorch. Each check runs in a fresh pwsh, so that what is loaded
# is what importing the module (and nothing else) loaded, and so that its stdout can be inspected as a user sees it.

BeforeAll {
    $script:ModulePath = $env:MODELOPTPS_MODULE
    $script:ModuleDir = Split-Path $ModulePath

    # Run a script in a fresh `pwsh -NoProfile` (also when this pwsh is the `dotnet pwsh` tool: then the host is
    # dotnet and pwsh.dll is its first argument). Returns stdout lines, stderr text and the exit code.
    function Invoke-FreshPwsh([string] $Script) {
        $pwshArgs = @('-NoProfile', '-NonInteractive', '-Command', $Script)
        $exe = [Environment]::ProcessPath
        if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') {
            $pwshArgs = @([Environment]::GetCommandLineArgs()[0]) + $pwshArgs
        }
        $errFile = New-TemporaryFile
        try {
            $stdout = @(& $exe @pwshArgs 2> $errFile.FullName)
            [pscustomobject]@{ StdOut = $stdout; StdErr = (Get-Content $errFile.FullName -Raw); ExitCode = $LASTEXITCODE }
        }
        finally { Remove-Item $errFile.FullName -ErrorAction Ignore }
    }
}

Describe 'Import-Module ModelOptPS' {
    It 'does not load libtorch, and is quick' {
        $run = Invoke-FreshPwsh @'
$ErrorActionPreference = 'Stop'
$elapsed = Measure-Command { Import-Module $env:MODELOPTPS_MODULE }
$natives = @(Get-Content /proc/self/maps | Where-Object { $_ -match 'libtorch|libLibTorchSharp|libc10\.so' })
@{ ImportMilliseconds = $elapsed.TotalMilliseconds; Natives = $natives.Count } | ConvertTo-Json -Compress
'@
        $run.ExitCode | Should -Be 0 -Because $run.StdErr
        $result = $run.StdOut[-1] | ConvertFrom-Json
        $result.Natives | Should -Be 0 -Because 'only code that needs libtorch loads it'
        $result.ImportMilliseconds | Should -BeLessThan 3000
        Write-Host "    Import-Module took $([math]::Round($result.ImportMilliseconds)) ms"
    }
}

Describe 'Get-ModelOptEnvironment' {
    It 'reports versions and CPU capabilities without loading libtorch' {
        $run = Invoke-FreshPwsh @'
$ErrorActionPreference = 'Stop'
Import-Module $env:MODELOPTPS_MODULE
$environment = Get-ModelOptEnvironment
$natives = @(Get-Content /proc/self/maps | Where-Object { $_ -match 'libtorch_cpu\.so' }).Count
$environment | Add-Member -NotePropertyName NativesMapped -NotePropertyValue $natives -PassThru | ConvertTo-Json -Compress
'@
        $run.ExitCode | Should -Be 0 -Because $run.StdErr
        $environment = $run.StdOut[-1] | ConvertFrom-Json
        $environment.TorchLoaded | Should -BeFalse
        $environment.NativesMapped | Should -Be 0
        $environment.TorchThreads | Should -BeNullOrEmpty
        $environment.ModuleVersion | Should -Not -BeNullOrEmpty
        $environment.PowerShellVersion | Should -Match '^7\.'
        $environment.DotNetVersion | Should -Match '^\.NET '
        $environment.TorchSharpVersion | Should -Be '0.107.0'
        $environment.ProcessorCount | Should -BeGreaterThan 0
        $environment.TorchNativeDirectory | Should -Be $ModuleDir
    }

    It '-LoadTorch loads libtorch, proves it computes, and writes nothing else to stdout' {
        $run = Invoke-FreshPwsh @'
$ErrorActionPreference = 'Stop'
Import-Module $env:MODELOPTPS_MODULE
$elapsed = Measure-Command { $environment = Get-ModelOptEnvironment -LoadTorch }
$environment | Add-Member -NotePropertyName LoadMilliseconds -NotePropertyValue $elapsed.TotalMilliseconds -PassThru |
    ConvertTo-Json -Compress
'@
        $run.ExitCode | Should -Be 0 -Because $run.StdErr
        # Exactly one line: TorchSharp's fallback loader would have printed its message to stdout.
        $run.StdOut | Should -HaveCount 1
        $environment = $run.StdOut[0] | ConvertFrom-Json
        $environment.TorchLoaded | Should -BeTrue
        $environment.TorchThreads | Should -BeGreaterThan 0
        $environment.TorchThreads | Should -BeLessOrEqual $environment.ProcessorCount
        $environment.LibTorchVersion | Should -Not -BeNullOrEmpty
        $environment.TorchSelfTestMilliseconds | Should -Not -BeNullOrEmpty
        Write-Host "    Get-ModelOptEnvironment -LoadTorch took $([math]::Round($environment.LoadMilliseconds)) ms (libtorch shim: $($environment.LibStdCxxShim))"
    }

    It 'leaves no cpu/ copy of the natives beside TorchSharp.dll' {
        # TorchSharp makes that folder only when its regular load failed; the test above has run by now.
        Join-Path $ModuleDir 'cpu' | Should -Not -Exist
    }

    It 'lays the natives out flat beside TorchSharp.dll' {
        Join-Path $ModuleDir 'TorchSharp.dll' | Should -Exist
        Join-Path $ModuleDir 'libLibTorchSharp.so' | Should -Exist
        Join-Path $ModuleDir 'libtorch_cpu.so' | Should -Exist
    }
}
