<#
.SYNOPSIS
    One W4A4 calibration of a checkpoint, as a user runs it, in this process; used by Soak.ps1 (one fresh process per run).
.DESCRIPTION
    Import-HFModel | Set-QuantConfig -Preset NVFP4_DEFAULT | Invoke-Calibration -NumSamples 32 (of 256 tokens). Prints
    one line of JSON (tokens, seconds, this process's CPU seconds, quantizers calibrated); any error ends the process
    with exit code 1.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ModelPath
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$model = Import-HFModel $ModelPath
try {
    $null = $model | Set-QuantConfig -Preset NVFP4_DEFAULT | Invoke-Calibration -NumSamples 32 -ReportVariable report
    [pscustomobject]@{
        Tokens = $report.Tokens
        Seconds = [math]::Round($report.Duration.TotalSeconds, 1)
        CpuSeconds = [math]::Round([Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime.TotalSeconds, 1)
        QuantizersCalibrated = $report.QuantizersCalibrated
    } | ConvertTo-Json -Compress
}
finally {
    $model.Dispose()
}
