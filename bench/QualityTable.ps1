<#
.SYNOPSIS
    The weight-algorithm x activation-calibrator quality table of issue 12 on the shipped sample model: for W4A4
    (NVFP4_DEFAULT) and W4A16 (W4A16_NVFP4), each weight algorithm with max and headroom input scales, the planned form's
    perplexity change, KL and top-1 agreement on the held-out split, and the time to calibrate + measure.
#>
param(
    [string] $Model = (Join-Path $PSScriptRoot '../sample/qwen3-moe-tiny'),
    [string] $Module = (Join-Path $PSScriptRoot '../out/ModelOptPS/ModelOptPS.psd1'),
    [string] $OutFile = (Join-Path $PSScriptRoot '../out/bench/quality-table.json'),
    # Held-out windows measured (the demo uses 64 of 256 tokens).
    [int] $NumSamples = 64
)
$ErrorActionPreference = 'Stop'
Import-Module $Module -Force
$rows = [System.Collections.Generic.List[object]]::new()
foreach ($preset in 'NVFP4_DEFAULT', 'W4A16_NVFP4') {
    foreach ($algorithm in 'Max', 'Mse', 'MseFp8Sweep', 'LocalHessian', 'Gptq') {
        # Weight-only input scales do not exist: one row per algorithm; W4A4 gets max and headroom.
        $calibrators = if ($preset -eq 'W4A16_NVFP4') { @('Max') } else { @('Max', 'Headroom') }
        foreach ($calibrator in $calibrators) {
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $m = Import-HFModel $Model -WarningAction SilentlyContinue |
                Set-QuantConfig -Preset $preset -Algorithm $algorithm -WarningAction SilentlyContinue
            if ($m.Plan.NeedsCalibration) {
                $m = $m | Invoke-Calibration -ActivationCalibrator $calibrator -WarningAction SilentlyContinue
            }
            $q = $m | Measure-QuantQuality -NumSamples $NumSamples -SequenceLength 256 -WarningAction SilentlyContinue
            $row = [pscustomobject]@{
                Scheme = if ($preset -eq 'W4A16_NVFP4') { 'W4A16' } else { 'W4A4' }
                Weights = $algorithm
                Inputs = if ($preset -eq 'W4A16_NVFP4') { '-' } else { $calibrator }
                PerplexityChange = [math]::Round(100 * ($q.QuantizedPerplexity / $q.ReferencePerplexity - 1), 2)
                MeanKl = [math]::Round($q.MeanKl, 5)
                Top1 = [math]::Round(100 * $q.Top1Agreement, 2)
                Seconds = [math]::Round($clock.Elapsed.TotalSeconds, 1)
                Positions = $q.Positions
            }
            $rows.Add($row)
            $row | Format-Table -HideTableHeaders | Out-String | Write-Host
            $m.Dispose()
        }
    }
}
$rows | Format-Table -AutoSize | Out-String | Write-Host
New-Item -ItemType Directory -Force -Path (Split-Path $OutFile) | Out-Null
$rows | ConvertTo-Json | Set-Content $OutFile
