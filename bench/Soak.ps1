#Requires -Version 7.4
<#
.SYNOPSIS
    Soak benchmark (not a CI test): README's demo command many times in a row, then W4A4 calibration of a multi-GB
    Qwen3.5-MoE-shaped checkpoint several times; counts failures (target 0) and times.
.DESCRIPTION
    Every run is a fresh process, so a native crash is counted, not fatal to the soak. Writes out/bench/soak.json and
    prints a table; each run's output is kept under out/bench/soak-logs. Exits 1 if any run failed.

    The checkpoint is generated once (seeded random weights, N(0, 0.02)-like, so activations and amax are meaningful)
    under out/bench/ and reused: Qwen3.5-MoE layout (fused experts, hybrid Gated DeltaNet / gated attention layers,
    vision tower and MTP head on disk), hidden 2048, 8 layers, 64 experts of width 512 (top-8) plus a shared expert,
    16 query / 2 KV heads of 256, DeltaNet 16 key / 32 value heads of 128: 3.98 GiB of bf16. Calibration runs 32
    sequences of 256 tokens of the built-in corpus (Invoke-Calibration -NumSamples 32).
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Soak.ps1
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/Soak.ps1 -DemoRuns 1 -CalibrationRuns 1   # check that it works
#>
[CmdletBinding()]
param(
    [ValidateRange(0, 1000)] [int] $DemoRuns = 20,
    [ValidateRange(0, 100)] [int] $CalibrationRuns = 3,
    # Experts per MoE layer of the generated checkpoint: its size (64: 3.98 GiB; 32: 2.29 GiB).
    [ValidateRange(8, 256)] [int] $Experts = 64,
    [ValidateSet('Debug', 'Release')] [string] $Configuration = 'Release',
    # Skip the initial build (the demo runs build anyway; calibration needs the staged module and the fixtures).
    [switch] $NoBuild
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = Split-Path $PSScriptRoot -Parent
$BenchOut = Join-Path $Root 'out/bench'
$Logs = Join-Path $BenchOut 'soak-logs'
$ModulePath = Join-Path $Root 'out/ModelOptPS/ModelOptPS.psd1'
New-Item -ItemType Directory -Path $Logs -Force | Out-Null

# Runs a fresh pwsh with the arguments; its output goes to a log. Returns whether it exited 0, seconds and output.
function Invoke-Child([string] $Log, [string[]] $Arguments) {
    $clock = [Diagnostics.Stopwatch]::StartNew()
    & dotnet pwsh -NoProfile -NonInteractive @Arguments *> $Log
    $exit = $LASTEXITCODE
    $clock.Stop()
    $text = Get-Content $Log -Raw
    [pscustomobject]@{ Ok = $exit -eq 0; ExitCode = $exit; Seconds = [math]::Round($clock.Elapsed.TotalSeconds, 1); Output = "$text" }
}

# The line that says why a run failed: libtorch's assert, an error record, or the last line.
function Get-FailureReason([string] $Output) {
    $lines = $Output -split "`n" | ForEach-Object Trim | Where-Object { $_ }
    $reason = $lines | Where-Object { $_ -match 'INTERNAL ASSERT|Expected .* to be true|Exception|error|failed' } | Select-Object -First 1
    if ($reason) { $reason } else { $lines | Select-Object -Last 1 }
}

function Get-Summary([object[]] $Runs) {
    $seconds = @($Runs | Where-Object Ok | ForEach-Object Seconds | Sort-Object)
    [ordered]@{
        runs = $Runs.Count
        failures = @($Runs | Where-Object { -not $_.Ok }).Count
        median_seconds = if ($seconds) { $seconds[[int][math]::Floor(($seconds.Count - 1) / 2)] } else { $null }
        max_seconds = if ($seconds) { $seconds[-1] } else { $null }
        results = @($Runs | ForEach-Object {
                # The calibration child's JSON line adds its CPU seconds: comparable across runs on a shared machine.
                $report = $_.Output -split "`n" | Where-Object { $_ -match '^\{.*CpuSeconds' } | Select-Object -Last 1 | ConvertFrom-Json
                [ordered]@{
                    ok = $_.Ok; exit_code = $_.ExitCode; seconds = $_.Seconds; cpu_seconds = $report ? $report.CpuSeconds : $null
                    failure = if ($_.Ok) { $null } else { Get-FailureReason $_.Output }
                }
            })
    }
}

# A Qwen3.5-MoE-shaped checkpoint (see .DESCRIPTION), written once and reused; a marker says it is complete.
function Initialize-SoakModel {
    $folder = Join-Path $BenchOut "soak-qwen3_5_moe-h2048-l8-e$Experts"
    $marker = Join-Path $folder '.soak-complete'
    if (-not (Test-Path $marker)) {
        Remove-Item $folder -Recurse -Force -ErrorAction Ignore
        $fixtures = Join-Path $Root "tests/Fixtures/bin/$Configuration/net10.0/ModelOptPS.Fixtures.dll"
        Write-Host "==> generating $folder" -ForegroundColor Cyan
        $generate = "Add-Type -Path '$fixtures'; " +
            "`$dims = [ModelOptPS.Fixtures.Dims]@{ Hidden = 2048; Layers = 8; Heads = 16; KvHeads = 2; HeadDim = 256; Experts = $Experts; " +
            "TopK = 8; ExpertIntermediate = 512; SharedIntermediate = 512; LinearKeyHeads = 16; LinearValueHeads = 32; LinearKeyDim = 128; LinearValueDim = 128 }; " +
            "`$null = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_5_moe', '$folder', `$dims, 1234, 2GB)"
        $run = Invoke-Child (Join-Path $Logs 'generate.log') @('-Command', $generate)
        if (-not $run.Ok) { throw "Generating the soak checkpoint failed: $(Get-FailureReason $run.Output) (log: $Logs/generate.log)" }
        New-Item -ItemType File -Path $marker | Out-Null
        Write-Host "    $($run.Seconds) s"
    }
    $bytes = (Get-ChildItem $folder -Filter '*.safetensors' | Measure-Object Length -Sum).Sum
    [ordered]@{ path = $folder; family = 'qwen3_5_moe'; experts = $Experts; bytes = $bytes; gib = [math]::Round($bytes / 1GB, 2) }
}

if (-not $NoBuild) {
    & dotnet pwsh -NoProfile -File (Join-Path $Root 'build.ps1') -Task Build -Configuration $Configuration
    if ($LASTEXITCODE -ne 0) { throw "The build failed (exit code $LASTEXITCODE)." }
}

$demo = @(for ($i = 1; $i -le $DemoRuns; $i++) {
        # README's first command, verbatim, from the repository root.
        Push-Location $Root
        try { $run = Invoke-Child (Join-Path $Logs "demo-$i.log") @('-File', './build.ps1', '-Task', 'Demo') }
        finally { Pop-Location }
        Write-Host ("demo {0}/{1}: {2} in {3} s" -f $i, $DemoRuns, $(if ($run.Ok) { 'ok' } else { "FAILED: $(Get-FailureReason $run.Output)" }), $run.Seconds)
        $run
    })

$model = if ($CalibrationRuns -gt 0) { Initialize-SoakModel } else { $null }
$calibration = @(for ($i = 1; $i -le $CalibrationRuns; $i++) {
        $run = Invoke-Child (Join-Path $Logs "calibration-$i.log") @('-File', (Join-Path $PSScriptRoot 'Soak-Calibration.ps1'), '-ModulePath', $ModulePath, '-ModelPath', $model.path)
        Write-Host ("calibration {0}/{1}: {2} in {3} s" -f $i, $CalibrationRuns, $(if ($run.Ok) { 'ok' } else { "FAILED: $(Get-FailureReason $run.Output)" }), $run.Seconds)
        $run
    })

$result = [ordered]@{
    date = (Get-Date).ToUniversalTime().ToString('o')
    processors = [Environment]::ProcessorCount
    load_average = (Get-Content /proc/loadavg -ErrorAction Ignore) -split ' ' | Select-Object -First 3
    demo = [ordered]@{ command = 'dotnet pwsh -NoProfile -File ./build.ps1 -Task Demo' } + (Get-Summary $demo)
    calibration = [ordered]@{
        command = 'Import-HFModel | Set-QuantConfig -Preset NVFP4_DEFAULT | Invoke-Calibration -NumSamples 32 (x 256 tokens), a fresh process per run'
        model = $model
    } + (Get-Summary $calibration)
}
$json = Join-Path $BenchOut 'soak.json'
$result | ConvertTo-Json -Depth 6 | Set-Content $json

@(
    [pscustomobject]@{ What = 'demo (build.ps1 -Task Demo)'; Runs = $result.demo.runs; Failures = $result.demo.failures; 'Median s' = $result.demo.median_seconds; 'Max s' = $result.demo.max_seconds }
    [pscustomobject]@{ What = "W4A4 calibration, $(if ($model) { "$($model.gib) GiB " })Qwen3.5-MoE"; Runs = $result.calibration.runs; Failures = $result.calibration.failures; 'Median s' = $result.calibration.median_seconds; 'Max s' = $result.calibration.max_seconds }
) | Format-Table -AutoSize | Out-Host
Write-Host "wrote $json (logs: $Logs)"
if ($result.demo.failures + $result.calibration.failures -gt 0) { exit 1 }
