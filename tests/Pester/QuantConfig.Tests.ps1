BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Qwen35 = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('qwen3_5_moe', (Join-Path $TestDrive 'qwen3_5_moe'), $null, 1234, 10000000000)
    $script:Llama = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('llama', (Join-Path $TestDrive 'llama'), $null, 1234, 10000000000)
}

Describe 'Set-QuantConfig' {
    It 'attaches a plan and passes the model on (NVFP4_DEFAULT when no preset is named)' {
        $model = Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig
        $model | Should -BeOfType ([ModelOptPS.Engine.Model.HFModel])
        $model.Plan.RecipeName | Should -Be 'NVFP4_DEFAULT'
        $model.Plan.QuantizedCount | Should -Be 29
        $model.Plan.QuantAlgo | Should -Be 'NVFP4'
        ($model | Out-String) | Should -Match 'Plan\s+: NVFP4_DEFAULT: 29 of'
    }

    It 'takes a preset by name: <Preset>' -ForEach @(
        @{ Preset = 'NVFP4_MLP_ONLY'; Count = 16; Algo = 'NVFP4' }
        @{ Preset = 'NVFP4_EXPERTS_ONLY'; Count = 4; Algo = 'NVFP4' }
        @{ Preset = 'W4A16_NVFP4'; Count = 29; Algo = 'W4A16_NVFP4' }
        @{ Preset = 'NVFP4_EXPERTS_ONLY_KV_FP8_CAST'; Count = 4; Algo = 'NVFP4' }
        @{ Preset = 'W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST'; Count = 30; Algo = 'MIXED_PRECISION' }
    ) {
        $plan = (Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -Preset $Preset).Plan
        $plan.QuantizedCount | Should -Be $Count
        $plan.QuantAlgo | Should -Be $Algo
    }

    It 'completes preset names with Tab' {
        $line = 'Set-QuantConfig -Preset NVFP4_E'
        $completion = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $completion.CompletionMatches.CompletionText | Should -Be @('NVFP4_EXPERTS_ONLY', 'NVFP4_EXPERTS_ONLY_KV_FP8_CAST')
        $line = 'Set-QuantConfig -Preset '
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.Count | Should -Be 7
    }

    It 'completes the NVIDIA-style presets with what they do' {
        $line = 'Set-QuantConfig -Preset W4A16_NVFP4_'
        $match = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches
        $match.CompletionText | Should -Be 'W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST'
        $match.ToolTip | Should -Match 'MIXED_PRECISION'
        $match.ToolTip | Should -Match 'Qwen3\.6-35B-A3B-NVFP4'
        $line = 'Set-QuantConfig -Preset nvfp4_experts_only_'
        $match = (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches
        $match.CompletionText | Should -Be 'NVFP4_EXPERTS_ONLY_KV_FP8_CAST'
        $match.ToolTip | Should -Match 'FP8 KV cache'
    }

    It 'sets the KV cache with -KvCache <Mode>' -ForEach @(
        @{ Mode = 'None'; Algo = $null; Calibrated = $false }
        @{ Mode = 'Fp8Cast'; Algo = 'FP8'; Calibrated = $false }
        @{ Mode = 'Fp8Scaled'; Algo = 'FP8'; Calibrated = $true }
    ) {
        $plan = (Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -Preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST -KvCache $Mode).Plan
        $plan.KvCache.Mode | Should -Be $Mode
        $plan.KvCache.QuantAlgo | Should -Be $Algo
        $plan.CalibratedQuantizers -contains 'model.language_model.layers.3.self_attn.k_bmm_quantizer' | Should -Be $Calibrated
        $plan.QuantAlgo | Should -Be 'MIXED_PRECISION'
    }

    It 'refuses a -KvCache value that is not a mode' {
        $err = $null
        try { Import-HFModel $Llama | Set-QuantConfig -KvCache Nvfp4 -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike '*,ModelOptPS.Cmdlets.SetQuantConfigCommand'
        $err.Exception.Message | Should -Match 'None, Fp8Cast, Fp8Scaled'
    }

    It 'says why an experts-only preset quantizes nothing on a dense model' {
        Import-HFModel $Llama | Set-QuantConfig -Preset NVFP4_EXPERTS_ONLY_KV_FP8_CAST -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'PlanQuantizesNothing,*'
        $errs[0].Exception.Message | Should -Match "'\*\.experts\.\*weight_quantizer'"
        $errs[0].Exception.Message | Should -Match 'only its KV cache would be quantized'
    }

    It 'refuses an unknown preset' {
        Import-HFModel $Llama | Set-QuantConfig -Preset NOPE -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'UnknownPreset,*'
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'makes a plan that quantizes nothing an error, and lets it through with -AllowEmptyPlan' {
        $out = Import-HFModel $Llama | Set-QuantConfig -Preset NVFP4_EXPERTS_ONLY -ErrorVariable errs -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'PlanQuantizesNothing,*'
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        (Import-HFModel $Llama | Set-QuantConfig -Preset NVFP4_EXPERTS_ONLY -AllowEmptyPlan).Plan.QuantizedCount | Should -Be 0
    }

    It 'warns and names siblings left unquantized by -Exclude' {
        $model = Import-HFModel $Llama | Set-QuantConfig -Exclude 'model.layers.1.mlp.down_proj' -WarningVariable w -WarningAction SilentlyContinue
        ($w -join "`n") | Should -Match 'model\.layers\.1\.mlp\.down_proj'
        $model.Plan.QuantizedCount | Should -Be 13
    }

    It 'refuses a recipe that quantizes only part of a merged layer, naming it and the fix' {
        $out = Import-HFModel $Qwen35 -WarningAction SilentlyContinue |
            Set-QuantConfig -Exclude '*linear_attn.in_proj_z' -ErrorVariable errs -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'MergedLayerPartiallyQuantized,*'
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $errs[0].Exception.Message | Should -Match 'model\.language_model\.layers\.0\.linear_attn\.in_proj_qkvz'
        $errs[0].Exception.Message | Should -Match "-Exclude 'model\.language_model\.layers\.\*\.linear_attn\.in_proj_qkv'"
        # Both shards excluded together is fine.
        (Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -Exclude '*linear_attn.in_proj_qkv', '*linear_attn.in_proj_z').Plan.QuantizedCount |
            Should -Be 23
    }

    It 'loads a ModelOpt recipe file' {
        $recipe = Join-Path $TestDrive 'experts.yaml'
        @'
quant_cfg:
  - quantizer_name: '*'
    enable: false
  - quantizer_name: '*mlp.experts*weight_quantizer'
    cfg: {num_bits: e2m1, block_sizes: {-1: 16, type: dynamic, scale_bits: e4m3}}
  - quantizer_name: 'mtp.*'
    enable: false
'@ | Set-Content $recipe
        $model = Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -RecipePath $recipe
        $model.Plan.QuantizedCount | Should -Be 4
        $model.Plan.QuantAlgo | Should -Be 'W4A16_NVFP4'
        $missing = Import-HFModel $Llama | Set-QuantConfig -RecipePath (Join-Path $TestDrive 'none.yaml') -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'RecipeFileNotFound,*'
    }
}

Describe 'Set-QuantConfig with ModelOpt recipe files' {
    It 'loads a ModelOpt recipe (imports, metadata, quantize) through the built-in units' {
        $recipe = Join-Path $TestDrive 'nvfp4_experts_only-kv_fp8_cast.yaml'
        @'
imports:
  base_disable_all: configs/ptq/units/base_disable_all
  default_disabled_quantizers: configs/ptq/units/default_disabled_quantizers
  nvfp4: configs/numerics/nvfp4
  kv_fp8_cast: configs/ptq/units/kv_fp8_cast

metadata:
  recipe_type: ptq
quantize:
  algorithm:
    method: max
    layerwise: {enable: false}
  quant_cfg:
    - $import: base_disable_all
    - quantizer_name: '*.experts.*weight_quantizer'
      cfg:
        $import: nvfp4
    - quantizer_name: '*.experts.*input_quantizer'
      cfg:
        $import: nvfp4
    - $import: kv_fp8_cast
    - $import: default_disabled_quantizers
'@ | Set-Content $recipe
        $plan = (Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -RecipePath $recipe).Plan
        $plan.RecipeName | Should -Be 'nvfp4_experts_only-kv_fp8_cast'
        $plan.QuantizedCount | Should -Be 4
        $plan.QuantAlgo | Should -Be 'NVFP4'
        $plan.KvCache.Mode | Should -Be 'Fp8Cast'
        # -KvCache overrides the file's KV unit.
        (Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -RecipePath $recipe -KvCache None).Plan.KvCache.Mode | Should -Be 'None'
    }

    It 'refuses a recipe that calibrates with an algorithm ModelOptPS does not implement' {
        $recipe = Join-Path $TestDrive 'awq.yaml'
        "quantize:`n  algorithm: {method: awq_lite}`n  quant_cfg:`n    - `$import: configs/ptq/units/w4_nvfp4`n" | Set-Content $recipe
        Import-HFModel $Llama | Set-QuantConfig -RecipePath $recipe -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'UnsupportedCalibrationAlgorithm,*'
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $errs[0].Exception.Path | Should -Be $recipe
    }

    It 'takes the weight algorithm from a recipe file in ModelOpt''s spelling' {
        $recipe = Join-Path $TestDrive 'mse-sweep.yaml'
        "quantize:`n  algorithm:`n    method: mse`n    fp8_scale_sweep: true`n  quant_cfg:`n    - `$import: configs/ptq/units/w4_nvfp4`n" | Set-Content $recipe
        $plan = (Import-HFModel $Llama | Set-QuantConfig -RecipePath $recipe).Plan
        $plan.WeightAlgorithm | Should -Be 'MseFp8Sweep'
        $plan.NeedsCalibration | Should -BeFalse
        # -Algorithm overrides the file's.
        (Import-HFModel $Llama | Set-QuantConfig -RecipePath $recipe -Algorithm Gptq).Plan.WeightAlgorithm | Should -Be 'Gptq'
    }

    It 'sets the weight algorithm with -Algorithm; LocalHessian and Gptq need calibration even weight-only' -ForEach @(
        @{ Algorithm = 'Max'; Needs = $false }, @{ Algorithm = 'Mse'; Needs = $false }, @{ Algorithm = 'MseFp8Sweep'; Needs = $false },
        @{ Algorithm = 'LocalHessian'; Needs = $true }, @{ Algorithm = 'Gptq'; Needs = $true }
    ) {
        $plan = (Import-HFModel $Llama | Set-QuantConfig -Preset W4A16_NVFP4 -Algorithm $Algorithm).Plan
        $plan.WeightAlgorithm | Should -Be $Algorithm
        $plan.NeedsCalibration | Should -Be $Needs
        ($plan | Format-List | Out-String) | Should -Match "WeightAlgorithm\s*:\s*$Algorithm"
    }

    It 'refuses an unknown -Algorithm' {
        { Import-HFModel $Llama | Set-QuantConfig -Algorithm Awq -ErrorAction Stop } | Should -Throw -ErrorId 'CannotConvertArgumentNoMessage,ModelOptPS.Cmdlets.SetQuantConfigCommand'
    }
}

Describe 'Get-QuantPlan' {
    BeforeAll { $script:Model = Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig }

    It 'lists one object per module with the deciding entry' {
        $rows = $Model | Get-QuantPlan
        $rows.Count | Should -Be $Model.Modules.Count
        $lm = $rows | Where-Object Name -EQ 'lm_head'
        $lm.Decision | Should -Be 'Unquantized'
        $lm.EntryPattern | Should -Be '*lm_head*'
        $lm.EntryPosition | Should -BeGreaterThan 3
        ($rows | Where-Object Name -EQ 'model.language_model.embed_tokens').Reason | Should -Match 'embeddings are never quantized'
    }

    It 'filters by decision, kind and name' {
        @($Model | Get-QuantPlan -Decision Nvfp4 -Kind FusedExperts).Count | Should -Be 4
        @($Model | Get-QuantPlan -Name '*in_proj_a').Decision | Select-Object -Unique | Should -Be 'Unquantized'
        @($Model | Get-QuantPlan -Name 'model.language_model.layers.0.mlp.experts' -ExpertUnits).Count | Should -Be 16
    }

    It 'shows the weight algorithm per module, none for FP8 and unquantized modules' {
        $mixed = Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -Preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST -Algorithm MseFp8Sweep
        $rows = $mixed | Get-QuantPlan
        ($rows | Where-Object Decision -EQ 'W4A16Nvfp4').Algorithm | Select-Object -Unique | Should -Be 'MseFp8Sweep'
        ($rows | Where-Object Decision -EQ 'Fp8').Algorithm | Select-Object -Unique | Should -BeNullOrEmpty
        ($rows | Where-Object Decision -EQ 'Unquantized').Algorithm | Select-Object -Unique | Should -BeNullOrEmpty
        $text = $mixed | Get-QuantPlan -Decision W4A16Nvfp4 | Out-String -Width 250
        $text | Should -Match 'Algorithm'
        $text | Should -Match 'MseFp8Sweep'
    }

    It 'renders a table with the entry column' {
        $text = $Model | Get-QuantPlan -Name 'lm_head' | Out-String
        $text | Should -Match "#\d+ '\*lm_head\*' \[default-disabled\]"
    }

    It 'lists the FP8 decisions and the KV cache of a mixed-precision plan' {
        $mixed = Import-HFModel $Qwen35 -WarningAction SilentlyContinue | Set-QuantConfig -Preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST
        $fp8 = @($mixed | Get-QuantPlan -Decision Fp8)
        $fp8.Count | Should -Be 13
        ($fp8.Name | Where-Object { $_ -like '*.self_attn.*' }).Count | Should -Be 4
        ($mixed | Get-QuantPlan -Decision Fp8 -Name '*in_proj_qkv' | Out-String -Width 300) | Should -Match "Fp8\s+#\d+ '\*linear_attn\.in_proj_qkv\*weight_quantizer' \[preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST\]"

        $kv = @($mixed | Get-QuantPlan -KvCache)
        $kv.Count | Should -Be 1
        $kv[0] | Should -BeOfType ([ModelOptPS.Engine.Quantization.KvCacheLayer])
        $kv[0].Attention | Should -Be 'model.language_model.layers.3.self_attn'
        $kv[0].Mode | Should -Be 'Fp8Cast'
        $kv[0].KeyScaleName | Should -Be 'model.language_model.layers.3.self_attn.k_proj.k_scale'
        $kv[0].Reason | Should -Match 'k and v enabled by #\d+'
        ($kv | Out-String -Width 300) | Should -Match "model\.language_model\.layers\.3\.self_attn\s+Fp8Cast\s+#\d+ '\*\[kv\]_bmm_quantizer' \[preset W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST\]"
        @($mixed | Get-QuantPlan -KvCache -Name '*.layers.0.*').Count | Should -Be 0

        # The plan itself: its algorithm, formats and KV cache in one view, and in the model's one-line summary.
        $text = $mixed.Plan | Out-String -Width 300
        $text | Should -Match 'QuantAlgo\s+: MIXED_PRECISION'
        $text | Should -Match 'Formats\s+: FP8, W4A16_NVFP4'
        $text | Should -Match 'KvCache\s+: KV cache FP8 \(cast, no scales\) in 1 attention layer'
        $text | Should -Match 'Calibration\s+: needed for 13 quantizer'
        ($mixed | Out-String -Width 300) | Should -Match 'Plan\s+: W4A16_NVFP4_FP8_ATTN_KV_FP8_CAST: 30 of \d+ modules quantized \(MIXED_PRECISION\), KV cache FP8'
    }

    It 'lists the KV cache as unquantized when the recipe leaves it alone' {
        $kv = @($Model | Get-QuantPlan -KvCache)
        $kv.Count | Should -Be 1
        $kv[0].Mode | Should -Be 'None'
        $err = $null
        try { $Model | Get-QuantPlan -KvCache -Decision Fp8 -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'AmbiguousParameterSet,*'
    }

    It 'says to run Set-QuantConfig when there is no plan' {
        Import-HFModel $Llama | Get-QuantPlan -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NoQuantPlan,*'
    }
}
