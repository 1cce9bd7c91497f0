<#
.SYNOPSIS
    Runs every *.Tests.ps1 under tests/Pester against the staged module and writes pass/fail counts as JSON.
#>
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $SummaryPath,
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force

# The tests find the module and the fixture generator through these variables.
$env:MODELOPTPS_MODULE = (Resolve-Path $ModulePath).Path
$env:MODELOPTPS_FIXTURES = Join-Path $PSScriptRoot "../Fixtures/bin/$Configuration/net10.0/ModelOptPS.Fixtures.dll"

$config = New-PesterConfiguration
$config.Run.Path = $PSScriptRoot
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$result = Invoke-Pester -Configuration $config

@{ Passed = $result.PassedCount; Failed = $result.FailedCount; Skipped = $result.SkippedCount } |
    ConvertTo-Json | Set-Content -Path $SummaryPath
if ($result.FailedCount -gt 0) { exit 1 }
exit 0
