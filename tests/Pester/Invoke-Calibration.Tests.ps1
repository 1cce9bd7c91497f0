BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Source = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_5_moe', (Join-Path $TestDrive 'src'), $null, 1234, 10000000000)
    $script:Small = @{ NumSamples = 4; SequenceLength = 32 }
}

Describe 'Invoke-Calibration' {
    It 'runs the whole pipeline to a verified W4A4 checkpoint' {
        $out = Join-Path $TestDrive 'out'
        $result = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration @Small -WarningAction SilentlyContinue | Export-Nvfp4 $out -WarningAction SilentlyContinue
        $result.QuantAlgo | Should -Be 'NVFP4'
        $result | Test-QuantFormat -Quiet | Should -BeTrue
        Test-QuantFormat $out -Reference $Source -Quiet | Should -BeTrue
    }

    It 'attaches statistics and a report, and fills -ReportVariable' {
        $model = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration @Small -ReportVariable report -WarningAction SilentlyContinue
        $model.Statistics.InputAmax.Count | Should -BeGreaterThan 0
        $model.CalibrationReport.Tokens | Should -Be 128
        $report.Tokens | Should -Be 128
        $report.ExpertCoverage.Count | Should -Be 4
        $report.ExpertCoverage[0].TokensPerExpert.Count | Should -Be 8
    }

    It 'is deterministic for a seed' {
        $a = (Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -Seed 3 -WarningAction SilentlyContinue).Statistics.InputAmax
        $b = (Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -Seed 3 -WarningAction SilentlyContinue).Statistics.InputAmax
        foreach ($key in $a.Keys) { $b[$key] | Should -Be $a[$key] }
    }

    It 'plans NVFP4_DEFAULT, with a warning, for a model without a plan' {
        $model = Import-HFModel $Source -WarningAction SilentlyContinue | Invoke-Calibration @Small -WarningVariable w -WarningAction SilentlyContinue
        $model.Plan.RecipeName | Should -Be 'NVFP4_DEFAULT'
        ($w -join ' ') | Should -Match 'no plan'
    }

    It 'tells what it does with -Verbose, per MoE layer' {
        $records = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration @Small -Verbose -WarningAction SilentlyContinue 4>&1
        $text = ($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n"
        $text | Should -Match 'built-in corpus'
        $text | Should -Match 'layers\.3\.mlp\.experts: tokens per expert min'
    }

    It 'runs in BFloat16 by default, within a few bf16 steps of -ComputeDType Float32, and says so' {
        $fp32 = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration @Small -ComputeDType Float32 -WarningAction SilentlyContinue
        $fp32.CalibrationReport.ComputeDType | Should -Be 'Float32'
        $bf16 = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -WarningAction SilentlyContinue
        $bf16.CalibrationReport.ComputeDType | Should -Be 'BFloat16'
        $bf16.CalibrationReport.ToString() | Should -Match '\(BFloat16\)'
        $bf16.Statistics.InputAmax.Count | Should -Be $fp32.Statistics.InputAmax.Count
        foreach ($key in $fp32.Statistics.InputAmax.Keys) {
            $a = $fp32.Statistics.InputAmax[$key]
            [math]::Abs($bf16.Statistics.InputAmax[$key] - $a) | Should -BeLessOrEqual (0.05 * $a) -Because $key
        }
        $out = Join-Path $TestDrive 'out-bf16'
        $bf16 | Export-Nvfp4 $out -WarningAction SilentlyContinue | Out-Null
        Test-QuantFormat $out -Reference $Source -Quiet | Should -BeTrue
        { Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -ComputeDType Float16 } |
            Should -Throw '*Float32, BFloat16*'
    }

    It 'computes NVFP4 input scales with -ActivationCalibrator Headroom from the same statistics, and exports them' {
        $max = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -WarningAction SilentlyContinue
        $max.Statistics.ActivationCalibrator | Should -Be 'Max'
        $max.CalibrationReport.ActivationCalibrator | Should -Be 'Max'
        $headroom = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration @Small -ActivationCalibrator Headroom -WarningAction SilentlyContinue
        $headroom.Statistics.ActivationCalibrator | Should -Be 'Headroom'
        $headroom.CalibrationReport.ToString() | Should -Match 'Headroom activations'
        $switched = $max.Statistics.WithActivationCalibrator('Headroom')
        $raised = 0
        foreach ($key in $headroom.Statistics.InputAmax.Keys) {
            $switched.InputAmax[$key] | Should -Be $headroom.Statistics.InputAmax[$key]
            $headroom.Statistics.MaxAmax[$key] | Should -Be $max.Statistics.InputAmax[$key]
            if ($headroom.Statistics.InputAmax[$key] -gt $max.Statistics.InputAmax[$key]) { $raised++ }
        }
        $raised | Should -BeGreaterThan 0
        $out = Join-Path $TestDrive 'out-headroom'
        $headroom | Export-Nvfp4 $out -WarningAction SilentlyContinue | Out-Null
        Test-QuantFormat $out -Reference $Source -Quiet | Should -BeTrue
        { Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration @Small -ActivationCalibrator Entropy } |
            Should -Throw '*Max, Headroom*'
    }

    It 'reads user data and reports bad data with its own error id' {
        $data = Join-Path $TestDrive 'data.jsonl'
        1..20 | ForEach-Object { @{ text = "Document $_ about four-bit floating point numbers and scales." } | ConvertTo-Json -Compress } | Set-Content $data
        (Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig | Invoke-Calibration $data @Small -WarningAction SilentlyContinue).CalibrationReport.Data | Should -Match 'data.jsonl'
        Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig |
            Invoke-Calibration (Join-Path $TestDrive 'missing.jsonl') -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'DatasetNotFound,*'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}
