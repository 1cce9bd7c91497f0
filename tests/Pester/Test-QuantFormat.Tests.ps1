BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Source = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_moe', (Join-Path $TestDrive 'src'), $null, 1234, 200000)
    $script:Export = Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $TestDrive 'export')
    # A copy of the export, broken one way by the script block, for each test that needs a failing checkpoint.
    function New-BrokenExport([string] $Name, [scriptblock] $Break) {
        $copy = Join-Path $TestDrive $Name
        Copy-Item $Export.Path $copy -Recurse
        & $Break $copy
        $copy
    }
    function Remove-Exclusion([string] $Folder, [string] $Entry) {
        $hf = Join-Path $Folder 'hf_quant_config.json'
        $json = Get-Content $hf -Raw | ConvertFrom-Json
        $json.quantization.exclude_modules = @($json.quantization.exclude_modules | Where-Object { $_ -ne $Entry })
        $json | ConvertTo-Json -Depth 10 | Set-Content $hf
        $config = Join-Path $Folder 'config.json'
        $json = Get-Content $config -Raw | ConvertFrom-Json
        $json.quantization_config.ignore = @($json.quantization_config.ignore | Where-Object { $_ -ne $Entry })
        $json | ConvertTo-Json -Depth 20 | Set-Content $config
    }
}

Describe 'Test-QuantFormat' {
    It 'returns $true with -Quiet for a valid export, with and without -Reference' {
        Test-QuantFormat $Export.Path -Quiet | Should -BeExactly $true
        Test-QuantFormat $Export.Path -Reference $Source -Quiet | Should -BeExactly $true
    }

    It 'writes one object per module and checkpoint-level check, then a summary' {
        $out = @(Test-QuantFormat $Export.Path)
        $summary = $out[-1]
        $summary | Should -BeOfType ([ModelOptPS.Engine.Verification.VerificationReport])
        $summary.Passed | Should -BeTrue
        $summary.Format | Should -Be 'ModelOpt'
        $checks = $out[0..($out.Count - 2)]
        $checks | ForEach-Object { $_ | Should -BeOfType ([ModelOptPS.Engine.Verification.ModuleCheck]) }
        $checks.Count | Should -Be $summary.Checks.Count
        $q = $checks | Where-Object Name -EQ 'model.layers.0.self_attn.q_proj'
        $q.Status | Should -Be 'Pass'
        $q.Expected | Should -Match 'NVFP4'
        $q.Found | Should -Be 'NVFP4 [64, 64]'
        ($checks | Where-Object Name -EQ 'model.layers.0.mlp.gate' | Where-Object Scope -EQ Module).Expected | Should -Match 'exclude_modules'
    }

    It 'takes the Export-Nvfp4 result from the pipeline and compares with its source' {
        $summary = $Export | Test-QuantFormat | Select-Object -Last 1
        $summary.Reference | Should -Be $Source
        $summary.MinSqnrDb | Should -BeGreaterThan 15
        ($Export | Test-QuantFormat | Where-Object Name -EQ 'model.layers.1.mlp.experts.3.down_proj').SqnrDb | Should -BeGreaterThan 15
    }

    It 'takes paths from the pipeline: strings, DirectoryInfo, and relative to the location' {
        $Export.Path | Test-QuantFormat -Quiet | Should -BeTrue
        Get-Item $Export.Path | Test-QuantFormat -Quiet | Should -BeTrue
        Push-Location $TestDrive
        try { Test-QuantFormat ./export -Quiet | Should -BeTrue }
        finally { Pop-Location }
    }

    It 'returns $false and names the module and reason for a broken export, without an error' {
        $broken = New-BrokenExport 'no-lm-head-entry' { param($f) Remove-Exclusion $f 'lm_head' }
        Test-QuantFormat $broken -Quiet -ErrorVariable errs | Should -BeExactly $false
        $errs | Should -BeNullOrEmpty
        $fail = Test-QuantFormat $broken | Where-Object Status -EQ 'Fail'
        $fail.Name | Should -Be 'lm_head'
        $fail.ErrorId | Should -Be 'UnlistedUnquantizedLinear'
        $fail.Reason | Should -Match 'no exclude_modules entry names'
    }

    It 'names the merged layer whose shards disagree in weight_scale_2, without -Reference' {
        $broken = New-BrokenExport 'qkv-scale' { param($f)
            $shard = Join-Path $f 'model.safetensors'
            $bytes = [IO.File]::ReadAllBytes($shard)
            $headerLength = [int] [BitConverter]::ToUInt64($bytes, 0)
            $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $headerLength) | ConvertFrom-Json
            $start = 8 + $headerLength + [int] $header.'model.layers.0.self_attn.k_proj.weight_scale_2'.data_offsets[0]
            [BitConverter]::GetBytes([float] ([BitConverter]::ToSingle($bytes, $start) * 2)).CopyTo($bytes, $start)
            [IO.File]::WriteAllBytes($shard, $bytes) }
        $fail = Test-QuantFormat $broken | Where-Object Status -EQ 'Fail'
        $fail.Name | Should -Be 'model.layers.0.self_attn.k_proj'
        $fail.ErrorId | Should -Be 'MergedLayerScaleMismatch'
        $fail.Reason | Should -Match "merged layer 'model\.layers\.0\.self_attn\.qkv_proj' \(q_proj, k_proj, v_proj\)"
    }

    It 'reports a truncated shard as a failed check, not a crash' {
        $broken = New-BrokenExport 'truncated' { param($f)
            $file = [IO.File]::OpenWrite((Join-Path $f 'model.safetensors'))
            try { $file.SetLength($file.Length - 100) } finally { $file.Dispose() } }
        $summary = Test-QuantFormat $broken -ErrorAction Stop | Select-Object -Last 1
        $summary.Passed | Should -BeFalse
        ($summary.Failures | Where-Object Name -EQ 'model.safetensors').ErrorId | Should -Be 'SafetensorsTruncated'
    }

    It 'fails the source checkpoint itself: nothing is quantized' {
        $summary = Test-QuantFormat $Source | Select-Object -Last 1
        $summary.Passed | Should -BeFalse
        $summary.Failures.ErrorId | Should -Contain 'CheckpointNotQuantized'
    }

    It 'writes an error for a folder that does not exist (and $false with -Quiet)' {
        $missing = Join-Path $TestDrive 'missing'
        $out = Test-QuantFormat $missing -ErrorVariable errs -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'CheckpointFolderNotFound,*'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        Test-QuantFormat $missing -Quiet -ErrorAction SilentlyContinue | Should -BeExactly $false
    }

    It 'says what it checks with -Verbose' {
        $verbose = Test-QuantFormat $Export.Path -Reference $Source -Quiet -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($verbose.Message -join "`n") | Should -Match 'against the source'
        ($verbose.Message -join "`n") | Should -Match 'PASS'
    }

    It 'shows a table of checks and a summary by default' {
        $text = Test-QuantFormat $Export.Path | Out-String -Width 200
        $text | Should -Match 'Status\s+Name\s+Expected\s+Found\s+Reason'
        $text | Should -Match 'Summary\s+: PASS'
    }

    It 'reports a declared FP8 KV cache (cast mode: no k/v scales) in the report and its view' {
        $kv = New-BrokenExport 'kv-partial' {
            param($Folder)
            $hf = Join-Path $Folder 'hf_quant_config.json'
            $json = Get-Content $hf -Raw | ConvertFrom-Json
            $json.quantization.kv_cache_quant_algo = 'FP8'
            $json | ConvertTo-Json -Depth 10 | Set-Content $hf
            $config = Join-Path $Folder 'config.json'
            $json = Get-Content $config -Raw | ConvertFrom-Json
            $json.quantization_config | Add-Member kv_cache_scheme ([ordered]@{ dynamic = $false; num_bits = 8; type = 'float' })
            $json | ConvertTo-Json -Depth 10 | Set-Content $config
        }
        $report = Test-QuantFormat $kv | Select-Object -Last 1
        $report.Passed | Should -BeTrue
        $report.KvCacheQuantAlgo | Should -Be 'FP8'
        ($report | Out-String -Width 200) | Should -Match 'KV cache FP8'
    }
}

Describe 'examples/Verify-Export.Tests.ps1' {
    BeforeAll {
        # The runbook example runs in a fresh pwsh (Pester does not nest), against the module under test.
        function Invoke-Runbook([string] $Path, [string] $Reference) {
            $example = Join-Path $PSScriptRoot '../../examples/Verify-Export.Tests.ps1'
            $command = "Import-Module '$((Get-Module Pester).Path)'; " +
                "`$c = New-PesterContainer -Path '$example' -Data @{ Path = '$Path'; Reference = '$Reference'; Module = '$env:MODELOPTPS_MODULE' }; " +
                "`$r = Invoke-Pester -Container `$c -PassThru -Output None; '{0} {1}' -f `$r.PassedCount, `$r.FailedCount"
            $counts = (& dotnet (Join-Path $PSHOME 'pwsh.dll') -NoProfile -NonInteractive -Command $command | Select-Object -Last 1) -split ' '
            [pscustomobject]@{ Passed = [int]$counts[0]; Failed = [int]$counts[1] }
        }
    }

    It 'passes every test on a valid export' {
        $run = Invoke-Runbook $Export.Path $Source
        $run.Failed | Should -Be 0
        $run.Passed | Should -Be 7
    }

    It 'fails on a broken export' {
        $broken = New-BrokenExport 'runbook-broken' { param($f) Remove-Exclusion $f 'lm_head' }
        (Invoke-Runbook $broken $Source).Failed | Should -BeGreaterThan 0
    }
}
