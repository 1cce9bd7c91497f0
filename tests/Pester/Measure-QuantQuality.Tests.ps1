BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Source = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_moe', (Join-Path $TestDrive 'src'), $null, 1234, 10000000000)
    $script:Small = @{ NumSamples = 3; SequenceLength = 24 }
}

Describe 'Measure-QuantQuality' {
    It 'measures a calibrated plan and its export read back to the same numbers' {
        $model = Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration -NumSamples 4 -SequenceLength 32 -WarningAction SilentlyContinue
        $planned = $model | Measure-QuantQuality @Small
        $planned | Should -BeOfType ([ModelOptPS.Engine.Quality.QualityReport])
        $planned.Scheme | Should -Be 'NVFP4'
        $planned.MeanKl | Should -BeGreaterThan 0
        $readBack = $model | Export-Nvfp4 (Join-Path $TestDrive 'out') | Measure-QuantQuality @Small
        $readBack.Quantized | Should -Match 'dequantized from disk'
        $readBack.QuantizedPerplexity | Should -Be $planned.QuantizedPerplexity
        $readBack.Top1Agreement | Should -Be $planned.Top1Agreement
    }

    It 'shows a readable summary' {
        $text = Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Measure-QuantQuality @Small | Out-String
        $text | Should -Match 'Perplexity\s+: [\d.]+ -> [\d.]+'
        $text | Should -Match 'Top-1 agreement'
    }

    It 'reports a folder that is not an NVFP4 export' {
        Measure-QuantQuality -Path $Source -Reference $Source @Small -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NotAnNvfp4Checkpoint,*'
    }
}
