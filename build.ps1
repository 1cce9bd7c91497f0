#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, benchmarks and demonstrates ModelOptPS.
.DESCRIPTION
    Build  - compiles the solution and stages the importable module at out/ModelOptPS/ModelOptPS.psd1
             (managed and native dependencies laid out flat, libtorch made loadable on this system).
    Test   - Build, then the xunit engine tests and the Pester cmdlet tests; prints "N passed, N failed".
    Demo   - Build, then runs the main job on the shipped sample (alias: Run).
    Bench  - Build, then the benchmark harness in bench/ (results under out/bench).
    Clean  - removes every build output.
.EXAMPLE
    dotnet tool restore; dotnet pwsh -NoProfile -File ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Run', 'Bench', 'Clean')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Extra arguments passed to the benchmark harness (e.g. -BenchArgs '--quick').
    [string[]] $BenchArgs = @()
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'ModelOptPS'
$PesterVersion = '5.7.1'

function Invoke-Native {
    param([string] $What, [scriptblock] $Command)
    Write-Host "==> $What" -ForegroundColor Cyan
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)." }
}

function Get-NuGetPackagesRoot {
    if ($env:NUGET_PACKAGES) { return $env:NUGET_PACKAGES }
    return Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages'
}

function Invoke-Build {
    Invoke-Native 'dotnet build' { dotnet build (Join-Path $Root 'ModelOptPS.sln') -c $Configuration --nologo -v:q -clp:ErrorsOnly }
    # A RID-specific publish lays every native .so flat beside TorchSharp.dll: pwsh ignores a module's deps.json,
    # so that folder is the only place the loader looks.
    Invoke-Native 'dotnet publish (module)' {
        dotnet publish (Join-Path $Root 'src/Cmdlets/ModelOptPS.Cmdlets.csproj') -c $Configuration -r linux-x64 `
            --self-contained false -o $ModuleOut --nologo -v:q -clp:ErrorsOnly
    }
    Copy-Item -Path (Join-Path $Root 'module/*') -Destination $ModuleOut -Recurse -Force
    Invoke-Native 'module help' { dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'build/New-ModuleHelp.ps1') -ModuleFolder $ModuleOut }
    Write-Host "Module staged at $(Join-Path $ModuleOut 'ModelOptPS.psd1')"
}

function Get-PesterModulePath {
    $psd1 = Join-Path (Get-NuGetPackagesRoot) "pester/$PesterVersion/tools/Pester.psd1"
    if (-not (Test-Path $psd1)) {
        # Pester is not on the PowerShell Gallery here; NuGet serves it as a package we only download.
        Invoke-Native "restore Pester $PesterVersion" { dotnet restore (Join-Path $Root 'build/tools.proj') --nologo -v:q }
    }
    if (-not (Test-Path $psd1)) { throw "Pester $PesterVersion was restored but $psd1 is missing." }
    return $psd1
}

function Invoke-Test {
    Invoke-Build
    $results = Join-Path $Out 'test-results'
    Remove-Item $results -Recurse -Force -ErrorAction Ignore
    New-Item -ItemType Directory -Path $results | Out-Null

    Write-Host '==> xunit (engine)' -ForegroundColor Cyan
    dotnet test (Join-Path $Root 'tests/Engine.Tests/ModelOptPS.Engine.Tests.csproj') -c $Configuration --no-build `
        --nologo --logger 'trx;LogFileName=engine.trx' --results-directory $results
    $xunitExit = $LASTEXITCODE
    $trx = Get-ChildItem $results -Filter 'engine.trx' -Recurse | Select-Object -First 1
    $xPassed = 0; $xFailed = 0
    if ($trx) {
        $counters = ([xml](Get-Content $trx.FullName -Raw)).TestRun.ResultSummary.Counters
        $xPassed = [int]$counters.passed
        $xFailed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
    }
    elseif ($xunitExit -ne 0) { $xFailed = 1 }

    Write-Host '==> Pester (cmdlets)' -ForegroundColor Cyan
    $pester = Get-PesterModulePath
    $summary = Join-Path $results 'pester.json'
    # A fresh pwsh, so the module under test is imported exactly as a user would import it.
    dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/Pester/Invoke-PesterSuite.ps1') `
        -PesterPath $pester -ModulePath (Join-Path $ModuleOut 'ModelOptPS.psd1') -SummaryPath $summary `
        -Configuration $Configuration
    $pesterExit = $LASTEXITCODE
    $pPassed = 0; $pFailed = 0
    if (Test-Path $summary) {
        $p = Get-Content $summary -Raw | ConvertFrom-Json
        $pPassed = [int]$p.Passed; $pFailed = [int]$p.Failed
    }
    elseif ($pesterExit -ne 0) { $pFailed = 1 }

    Write-Host ("xunit: {0} passed, {1} failed; Pester: {2} passed, {3} failed" -f $xPassed, $xFailed, $pPassed, $pFailed)
    $passed = $xPassed + $pPassed
    $failed = $xFailed + $pFailed
    Write-Host ("{0} passed, {1} failed" -f $passed, $failed)
    if ($failed -gt 0 -or $xunitExit -ne 0 -or $pesterExit -ne 0) { exit 1 }
}

function Invoke-Demo {
    Invoke-Build
    dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'examples/demo.ps1') -ModulePath (Join-Path $ModuleOut 'ModelOptPS.psd1')
    if ($LASTEXITCODE -ne 0) { throw "The demo failed (exit code $LASTEXITCODE)." }
}

function Invoke-Bench {
    Invoke-Build
    $benchOut = Join-Path $Out 'bench'
    New-Item -ItemType Directory -Path $benchOut -Force | Out-Null
    Invoke-Native 'benchmarks' {
        dotnet run --project (Join-Path $Root 'bench/ModelOptPS.Bench.csproj') -c $Configuration --no-build -- --out $benchOut @BenchArgs
    }
}

function Invoke-Clean {
    foreach ($dir in @($Out) + (Get-ChildItem $Root -Directory -Recurse -Include bin, obj | ForEach-Object FullName)) {
        Remove-Item $dir -Recurse -Force -ErrorAction Ignore
    }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    { $_ -in 'Demo', 'Run' } { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Clean' { Invoke-Clean }
}
