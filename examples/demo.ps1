<#
.SYNOPSIS
    The whole job on the shipped sample model: import, plan, calibrate, export, verify, and what NVFP4 cost.
.DESCRIPTION
    Runs on sample/qwen3-moe-tiny (a Qwen3-MoE trained by this project on the built-in corpus) and prints a short
    summary. Writes only under -WorkFolder.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $Sample = (Join-Path $PSScriptRoot '../sample/qwen3-moe-tiny'),
    [string] $WorkFolder = (Join-Path ([IO.Path]::GetTempPath()) 'modeloptps-demo')
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force
$clock = [Diagnostics.Stopwatch]::StartNew()
Remove-Item $WorkFolder -Recurse -Force -ErrorAction Ignore
$out = Join-Path $WorkFolder 'qwen3-moe-tiny-nvfp4'

function Write-Section([string] $Title) { Write-Host "`n== $Title" -ForegroundColor Cyan }

Write-Section "Import-HFModel $Sample"
$model = Import-HFModel $Sample
$model | Format-List Name, Architecture, LayerCount, ExpertCount, ParameterCount, SourceDType, SizeOnDisk

Write-Section 'Set-QuantConfig -Preset NVFP4_DEFAULT'
$model = $model | Set-QuantConfig -Preset NVFP4_DEFAULT
$plan = $model | Get-QuantPlan
"{0} modules quantized to NVFP4; left unquantized, by the rule that decided:" -f ($plan | Where-Object IsQuantized).Count
$plan | Where-Object { -not $_.IsQuantized } |
    Group-Object { if ($_.DecidedBy) { "'{0}' ({1})" -f $_.DecidedBy.Pattern, $_.DecidedBy.Source } else { $_.Reason } } |
    Sort-Object Count -Descending | Format-Table @{ n = 'Modules'; e = 'Count' }, @{ n = 'Why'; e = 'Name' } -AutoSize -Wrap

Write-Section 'Invoke-Calibration (built-in corpus, training split)'
$model = $model | Invoke-Calibration -NumSamples 32 -SequenceLength 256 -ReportVariable calibration
"{0} tokens in {1:F1} s ({2:F0} tokens/s); {3} quantizers calibrated" -f $calibration.Tokens, $calibration.Duration.TotalSeconds, $calibration.TokensPerSecond, $calibration.QuantizersCalibrated
$calibration.ExpertCoverage | Format-Table Experts, @{ n = 'Min'; e = 'Min' }, Median, Max, @{ n = 'Idle experts'; e = { $_.Idle.Count } } -AutoSize

Write-Section "Export-Nvfp4 $out"
$export = $model | Export-Nvfp4 $out
"{0} files, {1} tensors: {2:N1} MB -> {3:N1} MB ({4:P0}); {5} NVFP4 modules; exclude_modules: {6}" -f $export.Files.Count, $export.TensorCount,
    ($export.SourceSize / 1MB), ($export.OutputSize / 1MB), $export.SizeRatio, $export.QuantizedModules, ($export.ExcludedModules -join ', ')

Write-Section 'Test-QuantFormat -Reference'
$verdict = $export | Test-QuantFormat | Where-Object { $_ -is [ModelOptPS.Engine.Verification.VerificationReport] }
$verdict.Summary
if (-not $verdict.Passed) { $verdict.Failures | Format-Table Name, ErrorId, Reason -AutoSize; throw 'The export failed verification.' }

Write-Section 'Measure-QuantQuality (held-out text, the export read back from disk)'
$quality = $export | Measure-QuantQuality -NumSamples 64 -SequenceLength 256
$quality | Format-List
"Demo finished in {0:F0} s." -f $clock.Elapsed.TotalSeconds
