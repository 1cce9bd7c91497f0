BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Source = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_5_moe', (Join-Path $TestDrive 'src'), $null, 1234, 10000000000)
    function New-PlannedModel([string] $Preset = 'W4A16_NVFP4') {
        Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig -Preset $Preset
    }
}

Describe 'Export-Nvfp4' {
    It 'exports a weight-only plan without calibration and returns a result object' {
        $out = Join-Path $TestDrive 'w4a16'
        $result = New-PlannedModel | Export-Nvfp4 $out -WarningAction SilentlyContinue
        $result | Should -BeOfType ([ModelOptPS.Engine.Export.ExportResult])
        $result.Path | Should -Be $out
        $result.QuantAlgo | Should -Be 'W4A16_NVFP4'
        $result.QuantizedModules | Should -Be (4 * 8 * 3 + 25)
        $result.Files | Should -Contain 'hf_quant_config.json'
        $result.OutputSize | Should -BeLessThan $result.SourceSize
        Test-Path (Join-Path $out 'tokenizer_config.json') | Should -BeTrue
    }

    It 'exports every weight algorithm through the pipeline and the export verifies against the source' -ForEach @(
        @{ Algorithm = 'MseFp8Sweep' }, @{ Algorithm = 'LocalHessian' }, @{ Algorithm = 'Gptq' }
    ) {
        $out = Join-Path $TestDrive "algorithm-$Algorithm"
        $model = Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig -Preset W4A16_NVFP4 -Algorithm $Algorithm
        if ($model.Plan.NeedsCalibration) { $model = $model | Invoke-Calibration -NumSamples 4 -SequenceLength 32 -WarningAction SilentlyContinue }
        ($null -ne $model.WeightSolutions) | Should -Be ($Algorithm -eq 'Gptq')
        $result = $model | Export-Nvfp4 $out -WarningAction SilentlyContinue
        $result.QuantAlgo | Should -Be 'W4A16_NVFP4'
        Test-QuantFormat $out -Reference $Source -Quiet | Should -BeTrue
    }

    It 'refuses a data-dependent weight algorithm without calibration' {
        $out = Join-Path $TestDrive 'lh-uncalibrated'
        Import-HFModel $Source -WarningAction SilentlyContinue | Set-QuantConfig -Preset W4A16_NVFP4 -Algorithm LocalHessian |
            Export-Nvfp4 $out -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'CalibrationRequired,*'
        $errs[0].Exception.Message | Should -Match 'LocalHessian'
        Test-Path $out | Should -BeFalse
    }

    It 'writes nothing with -WhatIf' {
        $out = Join-Path $TestDrive 'whatif'
        New-PlannedModel | Export-Nvfp4 $out -WhatIf
        Test-Path $out | Should -BeFalse
    }

    It 'refuses W4A4 without calibration and says what to do' {
        $out = Join-Path $TestDrive 'uncalibrated'
        New-PlannedModel 'NVFP4_DEFAULT' | Export-Nvfp4 $out -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'CalibrationRequired,*'
        $errs[0].Exception.Message | Should -Match 'Invoke-Calibration'
        Test-Path $out | Should -BeFalse
    }

    It 'exports W4A4 in both formats once statistics are attached' -ForEach @(
        @{ Format = 'ModelOpt'; Marker = 'input_scale' }
        @{ Format = 'CompressedTensors'; Marker = 'input_global_scale' }
    ) {
        $model = New-PlannedModel 'NVFP4_DEFAULT'
        $model.Statistics = [ModelOptPS.Fixtures.SyntheticStatistics]::For($model)
        $result = $model | Export-Nvfp4 (Join-Path $TestDrive "w4a4-$Format") -Format $Format -WarningAction SilentlyContinue
        $result.QuantAlgo | Should -Be 'NVFP4'
        (Get-Content (Join-Path $result.Path 'config.json') -Raw) | Should -Match '"quant_method"'
        # Import-HFModel refuses a quantized checkpoint, so read the tensor names from the shard headers.
        $names = foreach ($shard in Get-ChildItem $result.Path -Filter *.safetensors) {
            $bytes = [IO.File]::ReadAllBytes($shard.FullName)
            ([Text.Encoding]::UTF8.GetString($bytes, 8, [BitConverter]::ToUInt64($bytes, 0)) | ConvertFrom-Json).PSObject.Properties.Name
        }
        @($names | Where-Object { $_.EndsWith(".$Marker") }).Count | Should -Be $result.QuantizedModules
    }

    It 'refuses a non-empty target unless -Force, and never touches the source' {
        $out = Join-Path $TestDrive 'existing'
        New-Item -ItemType Directory $out | Out-Null
        Set-Content (Join-Path $out 'x.txt') 'x'
        $before = Get-ChildItem $Source -Recurse -File | Get-FileHash | ForEach-Object Hash
        New-PlannedModel | Export-Nvfp4 $out -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'TargetExists,*'
        $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-ChildItem $Source -Recurse -File | Get-FileHash | ForEach-Object Hash | Should -Be $before
    }

    It '-Force never deletes a file of yours: a folder that is not a previous export is TargetNotAnExport, untouched' {
        $out = Join-Path $TestDrive 'mine'
        New-Item -ItemType Directory $out | Out-Null
        Set-Content (Join-Path $out 'notes.md') 'mine'
        New-PlannedModel | Export-Nvfp4 $out -Force -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'TargetNotAnExport,*'
        $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        $errs[0].Exception.Message | Should -Match 'notes\.md'
        Get-Content (Join-Path $out 'notes.md') | Should -Be 'mine'
        @(Get-ChildItem $out -Force).Name | Should -Be @('notes.md')
        @(Get-ChildItem $TestDrive -Force -Filter '.mine.*').Count | Should -Be 0
    }

    It '-Force replaces a previous export, and refuses it once a file of yours is added' {
        $out = Join-Path $TestDrive 'previous'
        New-PlannedModel | Export-Nvfp4 $out -Format CompressedTensors -WarningAction SilentlyContinue | Out-Null
        Test-Path (Join-Path $out '.modeloptps-export.json') | Should -BeTrue
        $result = New-PlannedModel | Export-Nvfp4 $out -Force -WarningAction SilentlyContinue
        $result.Format | Should -Be 'ModelOpt'
        Test-Path (Join-Path $out 'hf_quant_config.json') | Should -BeTrue
        Test-QuantFormat $out -Reference $Source -Quiet | Should -BeTrue
        @(Get-ChildItem $TestDrive -Force -Filter '.previous.*').Count | Should -Be 0

        Set-Content (Join-Path $out 'eval.json') '{}'
        New-PlannedModel | Export-Nvfp4 $out -Force -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'TargetNotAnExport,*'
        $errs[0].Exception.Message | Should -Match 'eval\.json'
        Test-Path (Join-Path $out 'eval.json') | Should -BeTrue
    }

    It '-WhatIf with -Force touches neither the target nor the leftovers of an interrupted export' {
        $out = Join-Path $TestDrive 'whatif-force'
        New-PlannedModel | Export-Nvfp4 $out -WarningAction SilentlyContinue | Out-Null
        $partial = New-Item -ItemType Directory (Join-Path $TestDrive '.whatif-force.partial-0123')
        New-Item -ItemType File (Join-Path $partial '.modeloptps-staging') | Out-Null
        $before = Get-ChildItem $out -Force -Recurse -File | Get-FileHash | ForEach-Object Hash
        New-PlannedModel | Export-Nvfp4 $out -Force -WhatIf
        Get-ChildItem $out -Force -Recurse -File | Get-FileHash | ForEach-Object Hash | Should -Be $before
        Test-Path $partial | Should -BeTrue

        New-PlannedModel | Export-Nvfp4 $out -Force -WarningVariable w -WarningAction SilentlyContinue | Out-Null
        ($w -join ' ') | Should -Match ([regex]::Escape("Removed '$partial'"))
        Test-Path $partial | Should -BeFalse
    }

    It 'says what it is doing with -Verbose and warns about the filled-in architectures' {
        $out = Join-Path $TestDrive 'verbose'
        $records = New-PlannedModel | Export-Nvfp4 $out -Verbose -WarningVariable w 4>&1 -WarningAction SilentlyContinue
        ($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join ' ' | Should -Match 'Wrote \d+ files'
        ($w -join ' ') | Should -Match 'no architectures'
    }
}
