BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    $script:Sample = (Resolve-Path (Join-Path $PSScriptRoot '../../sample/qwen3-moe-tiny')).Path
    # 12 sequences in batches of 4: three batches, so up to three shards.
    $script:Split = @{ NumSamples = 12; SequenceLength = 64; BatchSize = 4; ActivationCalibrator = 'Headroom' }
    function New-Model([string] $Algorithm = 'LocalHessian', [string] $Path = $Sample) {
        Import-HFModel $Path -WarningAction SilentlyContinue | Set-QuantConfig -Algorithm $Algorithm -WarningAction SilentlyContinue
    }
    function New-Shards([string] $Folder, [int] $Count, [hashtable] $Extra = @{}) {
        foreach ($index in 0..($Count - 1)) {
            New-Model | Invoke-Calibration @Split @Extra -ShardIndex $index -ShardCount $Count -StatisticsPath (Join-Path $Folder "$index.safetensors") -WarningAction SilentlyContinue
        }
    }
    function Get-Bits([float[]] $Values) { [float[]] $Values | ForEach-Object { [BitConverter]::SingleToInt32Bits($_) } }
    # Every statistic of two runs, compared exactly (float32 by bits); Hessian float64 sums to reassociation rounding.
    function Assert-SameStatistics($Actual, $Expected) {
        $Actual.Tokens | Should -Be $Expected.Tokens
        $Actual.ActivationCalibrator | Should -Be $Expected.ActivationCalibrator
        foreach ($table in 'MaxAmax', 'InputAmax') {
            @($Actual.$table.Keys | Sort-Object) | Should -Be @($Expected.$table.Keys | Sort-Object)
            foreach ($key in $Expected.$table.Keys) {
                [BitConverter]::SingleToInt32Bits($Actual.$table[$key]) | Should -Be ([BitConverter]::SingleToInt32Bits($Expected.$table[$key])) -Because "$table[$key]"
            }
        }
        @($Actual.ActivationHistograms.Keys | Sort-Object) | Should -Be @($Expected.ActivationHistograms.Keys | Sort-Object)
        foreach ($key in $Expected.ActivationHistograms.Keys) {
            [Linq.Enumerable]::SequenceEqual([long[]] $Actual.ActivationHistograms[$key].Counts, [long[]] $Expected.ActivationHistograms[$key].Counts) | Should -BeTrue -Because "histogram of $key"
        }
        @($Actual.TokensPerExpert.Keys | Sort-Object) | Should -Be @($Expected.TokensPerExpert.Keys | Sort-Object)
        foreach ($key in $Expected.TokensPerExpert.Keys) { $Actual.TokensPerExpert[$key] | Should -Be $Expected.TokensPerExpert[$key] }
        $Expected.HessianBlocks.Count | Should -BeGreaterThan 0
        @($Actual.HessianBlocks.Keys | Sort-Object) | Should -Be @($Expected.HessianBlocks.Keys | Sort-Object)
        foreach ($key in $Expected.HessianBlocks.Keys) {
            $a = $Actual.HessianBlocks[$key]; $e = $Expected.HessianBlocks[$key]
            $a.Tokens | Should -Be $e.Tokens
            [Linq.Enumerable]::SequenceEqual([float[]] $a.Blocks, [float[]] $e.Blocks) | Should -BeTrue -Because "the float32 blocks of $key"
            $worst = 0.0
            for ($i = 0; $i -lt $e.Sums.Length; $i++) {
                $scale = [Math]::Max([Math]::Abs($e.Sums[$i]), 1e-300)
                $worst = [Math]::Max($worst, [Math]::Abs($a.Sums[$i] - $e.Sums[$i]) / $scale)
            }
            $worst | Should -BeLessThan 1e-12 -Because "the float64 sums of $key"
        }
    }
    function Get-FolderHashes([string] $Folder) {
        Get-ChildItem $Folder -File | Sort-Object Name | ForEach-Object { '{0} {1}' -f $_.Name, (Get-FileHash $_.FullName -Algorithm SHA256).Hash }
    }
    # The first ErrorRecord the action writes (the cmdlets write non-terminating errors; build.ps1 runs Pester under
    # ErrorActionPreference Stop, which would make them terminating).
    function Get-Error([scriptblock] $Action) {
        $ErrorActionPreference = 'Continue'
        @(& $Action 2>&1 | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })[0]
    }

    $script:Single = New-Model | Invoke-Calibration @Split -WarningAction SilentlyContinue
    $script:Shards = Join-Path $TestDrive 'shards'
    $script:Infos = @(New-Shards $Shards 3)
}

Describe 'Sharded calibration and Merge-CalibrationStatistics' {
    It 'calibrates each shard to a file and outputs what it wrote' {
        $Infos.Count | Should -Be 3
        $Infos[0] | Should -BeOfType ([ModelOptPS.Engine.Calibration.CalibrationShardInfo])
        $Infos.ShardIndex | Should -Be @(0, 1, 2)
        $Infos.Sequences | Should -Be @(4, 4, 4)
        ($Infos.Tokens | Measure-Object -Sum).Sum | Should -Be $Single.Statistics.Tokens
        $Infos | ForEach-Object { Test-Path $_.Path | Should -BeTrue }
        Get-ChildItem $Shards -Filter '*.partial' | Should -BeNullOrEmpty
        ($Infos | Format-Table | Out-String) | Should -Match '0/3'
    }

    It 'merges the shards into statistics identical to one run, and the exported checkpoints are byte-identical' {
        $merged = New-Model | Merge-CalibrationStatistics -Path (Join-Path $Shards '*.safetensors') -ReportVariable report -WarningAction SilentlyContinue
        Assert-SameStatistics $merged.Statistics $Single.Statistics
        $report.Tokens | Should -Be $Single.CalibrationReport.Tokens
        $report.Samples | Should -Be 12
        $report.Split.ShardCount | Should -Be 1
        $merged.CalibrationReport.IdleExperts | Should -Be $Single.CalibrationReport.IdleExperts
        @($merged.CalibrationReport.Warnings) | Should -Be @($Single.CalibrationReport.Warnings)

        $oneRun = Join-Path $TestDrive 'out-single'; $sharded = Join-Path $TestDrive 'out-sharded'
        $Single | Export-Nvfp4 $oneRun -WarningAction SilentlyContinue | Out-Null
        $merged | Export-Nvfp4 $sharded -WarningAction SilentlyContinue | Out-Null
        Get-FolderHashes $sharded | Should -Be (Get-FolderHashes $oneRun)

        $quality = @{ NumSamples = 2; SequenceLength = 32; WarningAction = 'SilentlyContinue' }
        $fromShards = $merged | Measure-QuantQuality @quality
        $fromOneRun = $Single | Measure-QuantQuality @quality
        ($fromShards.MeanKl, $fromShards.QuantizedPerplexity) | Should -Be ($fromOneRun.MeanKl, $fromOneRun.QuantizedPerplexity)
    }

    It 'merges two shards the same way, and re-reads a merged or whole-run file as one shard' {
        $two = Join-Path $TestDrive 'two'
        $null = New-Shards $two 2
        $mergedFile = Join-Path $TestDrive 'merged.safetensors'
        $merged = New-Model | Merge-CalibrationStatistics (Join-Path $two '*.safetensors') -OutputPath $mergedFile -WarningAction SilentlyContinue
        Assert-SameStatistics $merged.Statistics $Single.Statistics
        Assert-SameStatistics (New-Model | Merge-CalibrationStatistics $mergedFile -WarningAction SilentlyContinue).Statistics $Single.Statistics

        $whole = Join-Path $TestDrive 'whole.safetensors'
        $model = New-Model | Invoke-Calibration @Split -StatisticsPath $whole -WarningAction SilentlyContinue
        $model | Should -BeOfType ([ModelOptPS.Engine.Model.HFModel])
        Assert-SameStatistics (New-Model | Merge-CalibrationStatistics $whole -WarningAction SilentlyContinue).Statistics $Single.Statistics
    }

    It 'refuses statistics of another model' {
        $copy = Join-Path $TestDrive 'other-model'
        Copy-Item $Sample $copy -Recurse
        $config = Get-Content (Join-Path $copy 'config.json') -Raw | ConvertFrom-Json
        $config.rms_norm_eps = 1e-5
        $config | ConvertTo-Json -Depth 10 | Set-Content (Join-Path $copy 'config.json')
        $err = Get-Error { New-Model -Path $copy | Merge-CalibrationStatistics (Join-Path $Shards '*.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsModelMismatch,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $err.TargetObject | Should -BeLike "$Shards*"
    }

    It 'refuses statistics of another plan' {
        $err = Get-Error { New-Model -Algorithm Max | Merge-CalibrationStatistics (Join-Path $Shards '*.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsPlanMismatch,*'
        $err.Exception.Message | Should -Match 'Set-QuantConfig'
    }

    It 'refuses a shard given twice and names missing shards' {
        $copy = Join-Path $TestDrive 'copy-of-0.safetensors'
        Copy-Item (Join-Path $Shards '0.safetensors') $copy
        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $Shards '*.safetensors'), $copy }
        $err.FullyQualifiedErrorId | Should -BeLike 'DuplicateStatisticsShard,*'
        $err.Exception.Message | Should -Match 'Shard 0 of 3'

        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $Shards '0.safetensors'), (Join-Path $Shards '2.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'MissingStatisticsShards,*'
        $err.Exception.Message | Should -Match 'Shard\(s\) 1 of 3 are missing'
    }

    It 'refuses shards of different sample splits, naming what differs' {
        $other = Join-Path $TestDrive 'seed-9'
        $null = New-Shards $other 3 @{ Seed = 9 }
        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $Shards '0.safetensors'), (Join-Path $other '1.safetensors'), (Join-Path $Shards '2.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsSplitMismatch,*'
        $err.Exception.Message | Should -Match 'Seed: 1234 vs 9|Seed: 9 vs 1234'
    }

    It 'refuses GPTQ in shards and in merges' {
        $err = Get-Error { New-Model -Algorithm Gptq | Invoke-Calibration @Split -ShardIndex 0 -ShardCount 2 -StatisticsPath (Join-Path $TestDrive 'gptq.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'GptqStatisticsNotMergeable,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidOperation'
        Test-Path (Join-Path $TestDrive 'gptq.safetensors') | Should -BeFalse
        $err = Get-Error { New-Model -Algorithm Gptq | Merge-CalibrationStatistics (Join-Path $Shards '*.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'GptqStatisticsNotMergeable,*'
        $err.Exception.Message | Should -Match 'layer by layer'
    }

    It 'refuses more shards than batches, and a shard index outside the count' {
        $err = Get-Error { New-Model | Invoke-Calibration @Split -ShardIndex 0 -ShardCount 4 -StatisticsPath (Join-Path $TestDrive 'four.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'TooFewBatchesForShards,*'
        $err.Exception.Message | Should -Match '3 batch\(es\), fewer than the 4 shards'
        $err = Get-Error { New-Model | Invoke-Calibration @Split -ShardIndex 3 -ShardCount 3 -StatisticsPath (Join-Path $TestDrive 'three.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidShard,*'
    }

    It 'reports a file that is not statistics, a truncated one and a missing one with the file as target' {
        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $Sample 'model.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsFileInvalid,*'
        $err.TargetObject | Should -Be (Join-Path $Sample 'model.safetensors')
        $err.Exception.Message | Should -Match 'marker'

        $truncated = Join-Path $TestDrive 'truncated.safetensors'
        $bytes = [IO.File]::ReadAllBytes((Join-Path $Shards '1.safetensors'))
        [IO.File]::WriteAllBytes($truncated, $bytes[0..($bytes.Length - 100)])
        $err = Get-Error { New-Model | Merge-CalibrationStatistics $truncated }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsFileInvalid,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
        $err.TargetObject | Should -Be $truncated

        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $TestDrive 'nothing.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsFileNotFound,*'
        $err = Get-Error { New-Model | Merge-CalibrationStatistics (Join-Path $TestDrive 'nothing-*.safetensors') }
        $err.FullyQualifiedErrorId | Should -BeLike 'StatisticsFileNotFound,*'
    }
}

Describe 'examples/Invoke-ShardedCalibration.ps1' {
    It 'calibrates shards as background jobs, merges them and exports the same checkpoint as one run' {
        $out = Join-Path $TestDrive 'runbook-out'
        $runbook = Join-Path $PSScriptRoot '../../examples/Invoke-ShardedCalibration.ps1'
        $result = & $runbook -Checkpoint $Sample -OutputPath $out -ShardCount 2 -Algorithm LocalHessian -NumSamples 12 -SequenceLength 64 -BatchSize 4 `
            -StatisticsFolder (Join-Path $TestDrive 'runbook-shards') -Module $env:MODELOPTPS_MODULE -WarningAction SilentlyContinue
        $result.Path | Should -Be $out
        Test-Path (Join-Path $TestDrive 'runbook-shards/merged.safetensors') | Should -BeTrue
        $reference = Join-Path $TestDrive 'runbook-reference'
        $max = $Split.Clone(); $max.ActivationCalibrator = 'Max'
        New-Model | Invoke-Calibration @max -WarningAction SilentlyContinue | Export-Nvfp4 $reference -WarningAction SilentlyContinue | Out-Null
        Get-FolderHashes $out | Should -Be (Get-FolderHashes $reference)
    }
}
