<#
.SYNOPSIS
    The main job on the shipped sample, end to end, with a short readable summary.
.DESCRIPTION
    Until the trained sample model lands (issue 7), the demo generates the fused-expert Qwen3.5-MoE test
    checkpoint (architectures: null, vision tower, MTP head) and shows what ModelOptPS sees in it.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $WorkFolder = (Join-Path ([IO.Path]::GetTempPath()) 'modeloptps-demo')
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force
Add-Type -Path (Join-Path $PSScriptRoot '../tests/Fixtures/bin/Release/net10.0/ModelOptPS.Fixtures.dll')

Remove-Item $WorkFolder -Recurse -Force -ErrorAction Ignore
$source = Join-Path $WorkFolder 'qwen3_5_moe'
[ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_5_moe', $source, $null, 1234, 200000) | Out-Null

Write-Host "`n== Import-HFModel $source" -ForegroundColor Cyan
$model = Import-HFModel $source
$model | Format-List

Write-Host '== Modules by section and kind' -ForegroundColor Cyan
$model.Modules | Group-Object Section, Kind | Sort-Object Name | Format-Table Count, Name -AutoSize

Write-Host '== Fused experts' -ForegroundColor Cyan
$model.Modules | Where-Object Kind -EQ 'FusedExperts' | Format-Table
