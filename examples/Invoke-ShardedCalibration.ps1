<#
.SYNOPSIS
    Runbook: calibrate a checkpoint in shards running in parallel, merge their statistics, export NVFP4.
.DESCRIPTION
    Calibration over many samples is data-parallel. This runbook splits the sample set into -ShardCount shards of
    whole batches, calibrates each shard in its own background job (Start-Job: a separate PowerShell process, so the
    shard's inputs and outputs are serialized exactly as over remoting), waits for them, merges the statistics files
    with Merge-CalibrationStatistics (which checks they come from the same model, plan and sample split, with no shard
    missing or twice) and exports the checkpoint. The merged statistics are those of one run over all samples.

    To spread the shards over machines, change the one line marked REMOTING below from
        Start-Job -ScriptBlock $calibrateShard -ArgumentList $arguments
    to
        Invoke-Command -ComputerName $ComputerName[$index % $ComputerName.Count] -ScriptBlock $calibrateShard -ArgumentList $arguments -AsJob
    Each machine then needs ModelOptPS, the checkpoint and the data at the same paths, and -StatisticsFolder must be a
    share every machine writes to (or copy the files back with Copy-Item -FromSession before the merge). Kubernetes
    or Slurm jobs run the same Invoke-Calibration line with their own index. Shards computed on different CPUs or
    thread counts can differ in the last bits of their float32 GEMMs; on one machine the merge is exact.
.EXAMPLE
    ./examples/Invoke-ShardedCalibration.ps1 -Checkpoint /models/Qwen3-30B-A3B -OutputPath /models/Qwen3-30B-A3B-NVFP4 -ShardCount 4 -NumSamples 512
.EXAMPLE
    ./examples/Invoke-ShardedCalibration.ps1 -Checkpoint ./sample/qwen3-moe-tiny -OutputPath ./out -ShardCount 2 -NumSamples 8 -SequenceLength 64 -BatchSize 4
#>
[CmdletBinding()]
param(
    # The Hugging Face checkpoint folder to quantize.
    [Parameter(Mandatory)] [string] $Checkpoint,

    # The folder the NVFP4 checkpoint is exported to.
    [Parameter(Mandatory)] [string] $OutputPath,

    # How many shards (jobs) the samples are split into; there must be at least one batch per shard.
    [ValidateRange(1, 10000)] [int] $ShardCount = 2,

    # Where the shards' statistics files go (created if missing); the merged file is saved there too.
    [string] $StatisticsFolder = (Join-Path ([IO.Path]::GetTempPath()) "modeloptps-shards-$PID"),

    # The recipe and weight algorithm (Set-QuantConfig -Preset / -Algorithm). GPTQ cannot be sharded.
    [string] $Preset = 'NVFP4_DEFAULT',
    [string] $Algorithm,

    # The sample set, as for Invoke-Calibration: every shard uses the same values.
    [string] $Dataset,
    [int] $NumSamples = 64,
    [int] $SequenceLength = 256,
    [int] $BatchSize = 16,
    [int] $Seed = 1234,

    # Machines for the remoting variant (see the description); unused with Start-Job.
    [string[]] $ComputerName = @('localhost'),

    # Where each job imports ModelOptPS from (the installed module by default).
    [string] $Module = 'ModelOptPS'
)
$ErrorActionPreference = 'Stop'
Import-Module $Module
$Checkpoint = (Resolve-Path $Checkpoint).Path
$OutputPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutputPath)
$StatisticsFolder = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($StatisticsFolder)
New-Item -ItemType Directory -Force $StatisticsFolder | Out-Null

# What makes a shard one part of the same run: the same plan and the same sample split on every machine.
$plan = @{ Preset = $Preset }
if ($Algorithm) { $plan.Algorithm = $Algorithm }
$split = @{ NumSamples = $NumSamples; SequenceLength = $SequenceLength; BatchSize = $BatchSize; Seed = $Seed }
if ($Dataset) { $split.Dataset = (Resolve-Path $Dataset).Path }

# One shard, self-contained: it runs in a fresh process (or on another machine) and returns only plain values.
$calibrateShard = {
    param($Module, $Checkpoint, $Plan, $Split, $Index, $Count, $Path)
    $ErrorActionPreference = 'Stop'
    Import-Module $Module
    Import-HFModel $Checkpoint -WarningAction SilentlyContinue | Set-QuantConfig @Plan |
        Invoke-Calibration @Split -ShardIndex $Index -ShardCount $Count -StatisticsPath $Path
}

$jobs = foreach ($index in 0..($ShardCount - 1)) {
    $path = Join-Path $StatisticsFolder "shard-$index-of-$ShardCount.safetensors"
    $arguments = @($Module, $Checkpoint, $plan, $split, $index, $ShardCount, $path)
    Write-Verbose "Starting shard $index of $ShardCount -> $path"
    Start-Job -ScriptBlock $calibrateShard -ArgumentList $arguments   # REMOTING: Invoke-Command -ComputerName ... -AsJob
}

try {
    $null = $jobs | Wait-Job
    $failed = @($jobs | Where-Object State -NE 'Completed')
    $shards = @($jobs | Receive-Job -ErrorVariable shardErrors)
    if ($failed.Count -gt 0 -or $shardErrors.Count -gt 0) {
        throw "$($failed.Count) of $ShardCount shard job(s) failed: $(($shardErrors + $failed.ChildJobs.JobStateInfo.Reason | Where-Object { $_ }) -join '; ')"
    }
}
finally {
    $jobs | Remove-Job -Force
}
$shards | Sort-Object ShardIndex | Format-Table | Out-String | Write-Verbose

# The merge checks model, plan and split of every file; then the model flows on as after Invoke-Calibration.
$merged = Join-Path $StatisticsFolder 'merged.safetensors'
Import-HFModel $Checkpoint -WarningAction SilentlyContinue | Set-QuantConfig @plan |
    Merge-CalibrationStatistics -Path $shards.Path -OutputPath $merged |
    Export-Nvfp4 $OutputPath
