<#
.SYNOPSIS
    Calibration in Float32 against BFloat16 on one checkpoint: CPU seconds, wall seconds, peak anonymous memory, and how
    far the bf16 amaxes land from the fp32 ones.
.DESCRIPTION
    Runs Import-HFModel | Set-QuantConfig -Preset NVFP4_DEFAULT -KvCache Fp8Scaled | Invoke-Calibration -ComputeDType X
    once per dtype, each in a fresh process (so each peak is its own), and compares the amaxes per quantizer:
    |amax_bf16 - amax_fp32| / amax_fp32, its max and median, and how many exceed one bf16 step (2^-8 relative), for the
    Linear inputs and for the KV cache. The exported input_scale is amax / (6 x 448) rounded to float32, so it moves by
    the same relative amount. With -QualityModel, also Measure-QuantQuality of that model calibrated in each dtype (Invoke-Calibration's
    default data, -QualitySamples held-out windows of 256 tokens).
    Writes one JSON file (-OutPath) and prints a summary.
.EXAMPLE
    dotnet pwsh -NoProfile -File bench/CalibrationPrecision.ps1 -ModelPath out/bench/soak-qwen3_5_moe-h2048-l8-e64 -QualityModel sample/qwen3-moe-tiny
#>
param(
    [Parameter(Mandatory)] [string] $ModelPath,
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/ModelOptPS/ModelOptPS.psd1'),
    [int] $NumSamples = 32,
    [int] $SequenceLength = 512,
    [string] $QualityModel,
    # Held-out windows of 256 tokens for Measure-QuantQuality (bench/QualityTable.ps1 uses 64).
    [int] $QualitySamples = 64,
    # libtorch threads of the calibrations (OMP_NUM_THREADS); 1 keeps CPU seconds honest on a machine shared with other
    # work, where libtorch's workers spin at every op's barrier while the other is descheduled. 0: libtorch's default.
    [int] $TorchThreads = 1,
    [string] $OutPath = (Join-Path $PSScriptRoot '../out/bench/calibration-precision.json'),
    # Internal: run one calibration in this process and print its JSON.
    [ValidateSet('Float32', 'BFloat16')] [string] $Child
)
$ErrorActionPreference = 'Stop'

if ($Child) {
    Add-Type -TypeDefinition @'
public static class RssSampler
{
    public static long PeakAnon, PeakFile;
    private static System.Threading.Timer timer;
    public static void Start() { Sample(); timer = new System.Threading.Timer(_ => Sample(), null, 0, 20); }
    public static void Stop() { timer.Dispose(); Sample(); }
    public static void Sample()
    {
        foreach (var line in System.IO.File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("RssAnon:")) PeakAnon = System.Math.Max(PeakAnon, Kb(line));
            else if (line.StartsWith("RssFile:")) PeakFile = System.Math.Max(PeakFile, Kb(line));
        }
    }
    private static long Kb(string line) => long.Parse(line.Split(' ', System.StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
}
'@
    Import-Module $ModulePath
    $model = Import-HFModel $ModelPath -WarningAction SilentlyContinue | Set-QuantConfig -Preset NVFP4_DEFAULT -KvCache Fp8Scaled
    try {
        $process = [Diagnostics.Process]::GetCurrentProcess()
        [RssSampler]::Sample()
        $baseAnon = [RssSampler]::PeakAnon
        $cpu = $process.TotalProcessorTime
        $clock = [Diagnostics.Stopwatch]::StartNew()
        [RssSampler]::Start()
        $null = $model | Invoke-Calibration -NumSamples $NumSamples -SequenceLength $SequenceLength -ComputeDType $Child -ReportVariable report -WarningAction SilentlyContinue
        [RssSampler]::Stop()
        $process.Refresh()
        $amax = [ordered]@{}
        foreach ($key in $model.Statistics.InputAmax.Keys | Sort-Object) { $amax[$key] = $model.Statistics.InputAmax[$key] }
        [pscustomobject]@{
            ComputeDType = "$($report.ComputeDType)"
            Tokens = $report.Tokens
            WallSeconds = $clock.Elapsed.TotalSeconds
            CpuSeconds = ($process.TotalProcessorTime - $cpu).TotalSeconds
            BaselineAnonBytes = $baseAnon
            PeakAnonBytes = [RssSampler]::PeakAnon
            PeakFileBytes = [RssSampler]::PeakFile
            Amax = $amax
        } | ConvertTo-Json -Compress -Depth 4
    }
    finally { $model.Dispose() }
    return
}

function Invoke-Child([string] $dtype) {
    if ($TorchThreads -gt 0) { $env:OMP_NUM_THREADS = "$TorchThreads" }
    $line = & dotnet pwsh -NoProfile -File $PSCommandPath -ModelPath $ModelPath -ModulePath $ModulePath -NumSamples $NumSamples -SequenceLength $SequenceLength -Child $dtype
    if ($LASTEXITCODE -ne 0) { throw "The $dtype calibration failed: $line" }
    ($line | Select-Object -Last 1) | ConvertFrom-Json -AsHashtable
}

function Get-Median([double[]] $values) {
    $sorted = $values | Sort-Object
    if ($sorted.Count % 2) { $sorted[[int][math]::Floor($sorted.Count / 2)] } else { ($sorted[$sorted.Count / 2 - 1] + $sorted[$sorted.Count / 2]) / 2 }
}

function Compare-Amax($fp32, $bf16, [scriptblock] $where) {
    $keys = @($fp32.Keys | Where-Object $where)
    $deviations = @(foreach ($k in $keys) { [math]::Abs($bf16[$k] - $fp32[$k]) / $fp32[$k] })
    if ($keys.Count -eq 0) { return [ordered]@{ Quantizers = 0 } }
    $signed = @(foreach ($k in $keys) { ($bf16[$k] - $fp32[$k]) / $fp32[$k] })
    [ordered]@{
        Quantizers = $keys.Count
        MaxRelative = ($deviations | Measure-Object -Maximum).Maximum
        MedianRelative = Get-Median $deviations
        MeanSigned = ($signed | Measure-Object -Average).Average
        OverOneBf16Step = @($deviations | Where-Object { $_ -gt [math]::Pow(2, -8) }).Count
        Identical = @($keys | Where-Object { $bf16[$_] -eq $fp32[$_] }).Count
        # input_scale = amax / 2688 in float32: bitwise different exports.
        InputScaleDiffers = @($keys | Where-Object { [float]([float]$bf16[$_] / 2688) -ne [float]([float]$fp32[$_] / 2688) }).Count
    }
}

$load = (Get-Content /proc/loadavg) -replace ' \d+/.*$', ''
$runs = [ordered]@{}
foreach ($dtype in 'BFloat16', 'Float32') {
    Write-Host "calibrating $ModelPath in $dtype ($NumSamples x $SequenceLength tokens)..."
    $runs[$dtype] = Invoke-Child $dtype
    $r = $runs[$dtype]
    Write-Host ("  {0}: {1:F1} s wall, {2:F1} s CPU, peak RssAnon {3:F2} GB (baseline {4:F2} GB), peak RssFile {5:F2} GB" -f $dtype,
        $r.WallSeconds, $r.CpuSeconds, ($r.PeakAnonBytes / 1GB), ($r.BaselineAnonBytes / 1GB), ($r.PeakFileBytes / 1GB))
}
$isKv = { $_ -match '[kv]_bmm_quantizer$' }
$amaxFp32 = $runs.Float32.Amax; $amaxBf16 = $runs.BFloat16.Amax
$deviation = [ordered]@{
    LinearInputs = Compare-Amax $amaxFp32 $amaxBf16 { -not ($_ -match '[kv]_bmm_quantizer$') }
    KvCache = Compare-Amax $amaxFp32 $amaxBf16 $isKv
}
foreach ($k in $deviation.Keys) { Write-Host "amax deviation, $k`: $($deviation[$k] | ConvertTo-Json -Compress)" }

$quality = $null
if ($QualityModel) {
    Import-Module $ModulePath
    $quality = [ordered]@{}
    foreach ($dtype in 'BFloat16', 'Float32') {
        $m = Import-HFModel $QualityModel -WarningAction SilentlyContinue | Set-QuantConfig -Preset NVFP4_DEFAULT |
            Invoke-Calibration -ComputeDType $dtype -WarningAction SilentlyContinue
        try {
            $q = $m | Measure-QuantQuality -NumSamples $QualitySamples -SequenceLength 256 -WarningAction SilentlyContinue
            $quality[$dtype] = $q | Select-Object * -ExcludeProperty PSComputerName, PSShowComputerName, RunspaceId
            Write-Host "quality, calibrated in $dtype`: $q"
        }
        finally { $m.Dispose() }
    }
}

$result = [ordered]@{
    Model = (Resolve-Path $ModelPath).Path; NumSamples = $NumSamples; SequenceLength = $SequenceLength; LoadAverageAtStart = $load
    TorchThreads = if ($TorchThreads -gt 0) { $TorchThreads } else { 'default' }
    Runs = [ordered]@{}; AmaxDeviation = $deviation; Quality = $quality
}
foreach ($dtype in $runs.Keys) { $result.Runs[$dtype] = $runs[$dtype].Clone(); $result.Runs[$dtype].Remove('Amax') }
$null = New-Item -ItemType Directory -Force (Split-Path $OutPath)
$result | ConvertTo-Json -Depth 6 | Set-Content $OutPath
# Per-quantizer amaxes of both runs, for any other statistic.
[ordered]@{ Float32 = $amaxFp32; BFloat16 = $amaxBf16 } | ConvertTo-Json -Depth 4 | Set-Content ([IO.Path]::ChangeExtension($OutPath, '.amax.json'))
Write-Host "wrote $OutPath"
