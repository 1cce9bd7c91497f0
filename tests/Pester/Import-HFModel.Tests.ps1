BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $script:Fixtures = Join-Path $TestDrive 'ckpt'
    foreach ($family in [ModelOptPS.Fixtures.TinyCheckpoints]::Families) {
        [ModelOptPS.Fixtures.TinyCheckpoints]::Write($family, (Join-Path $Fixtures $family), $null, 1234, 200000) | Out-Null
    }
    function Get-FolderState([string] $Path) {
        Get-ChildItem $Path -Recurse -File | Sort-Object FullName |
            ForEach-Object { '{0} {1} {2}' -f $_.FullName, $_.Length, (Get-FileHash $_.FullName -Algorithm SHA256).Hash }
    }
}

Describe 'Import-HFModel' {
    It 'imports <Family> as <Architecture>' -ForEach @(
        @{ Family = 'llama'; Architecture = 'LlamaForCausalLM'; Layers = 2; Experts = 0 }
        @{ Family = 'qwen2'; Architecture = 'Qwen2ForCausalLM'; Layers = 2; Experts = 0 }
        @{ Family = 'qwen3'; Architecture = 'Qwen3ForCausalLM'; Layers = 2; Experts = 0 }
        @{ Family = 'qwen3_moe'; Architecture = 'Qwen3MoeForCausalLM'; Layers = 2; Experts = 8 }
        @{ Family = 'mixtral'; Architecture = 'MixtralForCausalLM'; Layers = 2; Experts = 4 }
        @{ Family = 'qwen3_next'; Architecture = 'Qwen3NextForCausalLM'; Layers = 4; Experts = 8 }
        @{ Family = 'qwen3_5_moe'; Architecture = 'Qwen3_5MoeForConditionalGeneration'; Layers = 4; Experts = 8 }
    ) {
        $model = Import-HFModel (Join-Path $Fixtures $Family) -WarningAction SilentlyContinue
        $model | Should -BeOfType ([ModelOptPS.Engine.Model.HFModel])
        $model.Architecture | Should -Be $Architecture
        $model.LayerCount | Should -Be $Layers
        $model.ExpertCount | Should -Be $Experts
        $model.SourceDType | Should -Be 'BF16'
        $model.ParameterCount | Should -BeGreaterThan 0
        $model.SizeOnDisk | Should -Be ((Get-ChildItem (Join-Path $Fixtures $Family) -Filter *.safetensors | Measure-Object Length -Sum).Sum)
    }

    It 'exposes modules as objects for Where-Object' {
        $model = Import-HFModel (Join-Path $Fixtures 'qwen3_5_moe') -WarningAction SilentlyContinue
        @($model.Modules | Where-Object Kind -EQ 'FusedExperts' | Where-Object Section -EQ 'Text').Count | Should -Be 4
        $q = $model.Modules | Where-Object Name -EQ 'model.language_model.layers.3.self_attn.q_proj'
        $q.Kind | Should -Be 'Linear'
        $q.Shape | Should -Be @(128, 64)
        @($model.Modules | Where-Object Section -EQ 'Vision').Count | Should -Be 11
    }

    It 'warns that a null architectures was resolved from model_type' {
        $null = Import-HFModel (Join-Path $Fixtures 'qwen3_5_moe') -WarningVariable warnings -WarningAction SilentlyContinue
        ($warnings -join ' ') | Should -Match 'architectures is null'
    }

    It 'accepts paths from the pipeline: strings, DirectoryInfo and objects with FullName' {
        $byString = (Join-Path $Fixtures 'llama'), (Join-Path $Fixtures 'qwen3') | Import-HFModel
        $byString.Count | Should -Be 2
        (Get-Item (Join-Path $Fixtures 'llama') | Import-HFModel).Architecture | Should -Be 'LlamaForCausalLM'
        ([pscustomobject]@{ FullName = (Join-Path $Fixtures 'mixtral') } | Import-HFModel).Family | Should -Be 'Mixtral'
        (Get-ChildItem $Fixtures -Directory | Import-HFModel -WarningAction SilentlyContinue).Count | Should -Be 7
    }

    It 'resolves relative paths against the PowerShell location' {
        Push-Location $Fixtures
        try { (Import-HFModel ./qwen3_moe).Family | Should -Be 'Qwen3Moe' }
        finally { Pop-Location }
    }

    It 'says what it is doing with -Verbose' {
        $verbose = Import-HFModel (Join-Path $Fixtures 'llama') -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($verbose.Message -join ' ') | Should -Match 'safetensors headers'
    }

    It 'shows a one-screen summary by default' {
        $text = Import-HFModel (Join-Path $Fixtures 'qwen3_5_moe') -WarningAction SilentlyContinue | Out-String
        $text | Should -Match 'Architecture\s+: Qwen3_5MoeForConditionalGeneration'
        $text | Should -Match 'Experts\s+: 8 \(top 2\)'
        $text | Should -Match 'FusedExperts'
        ($text -split "`n").Count | Should -BeLessThan 30
        $modules = (Import-HFModel (Join-Path $Fixtures 'llama')).Modules | Select-Object -First 3 | Out-String
        $modules | Should -Match 'Kind'
    }

    It 'never writes into the source folder' {
        $folder = Join-Path $Fixtures 'qwen3_next'
        $before = Get-FolderState $folder
        $null = Import-HFModel $folder
        Get-FolderState $folder | Should -Be $before
    }
}

Describe 'Import-HFModel errors' {
    It 'reports a missing folder as ObjectNotFound with its own error id, and goes on with the next path' {
        $missing = Join-Path $TestDrive 'nope'
        $models = Import-HFModel $missing, (Join-Path $Fixtures 'llama') -ErrorVariable errs -ErrorAction SilentlyContinue
        @($models).Count | Should -Be 1
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'CheckpointFolderNotFound,*'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errs[0].TargetObject | Should -Be $missing
    }

    It 'reports a truncated shard as InvalidData naming the file' {
        $folder = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('llama', (Join-Path $TestDrive 'truncated'), $null, 1, 10000000000)
        $shard = Join-Path $folder 'model.safetensors'
        $bytes = [IO.File]::ReadAllBytes($shard)
        [IO.File]::WriteAllBytes($shard, $bytes[0..($bytes.Length - 100)])
        { Import-HFModel $folder -ErrorAction Stop } | Should -Throw -ErrorId 'SafetensorsTruncated,ModelOptPS.Cmdlets.ImportHFModelCommand'
        $null = Import-HFModel $folder -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidData'
        $errs[0].Exception.Message | Should -Match ([regex]::Escape($shard))
    }

    It 'reports a missing config.json' {
        $folder = Join-Path $TestDrive 'noconfig'
        Copy-Item (Join-Path $Fixtures 'llama') $folder -Recurse
        Remove-Item (Join-Path $folder 'config.json')
        { Import-HFModel $folder -ErrorAction Stop } | Should -Throw -ErrorId 'ConfigNotFound,ModelOptPS.Cmdlets.ImportHFModelCommand'
    }
}

Describe 'Module' {
    It 'has a valid manifest and exports its cmdlets' {
        Test-ModuleManifest $env:MODELOPTPS_MODULE | Should -Not -BeNullOrEmpty
        (Get-Command -Module ModelOptPS).Name | Should -Contain 'Import-HFModel'
    }
}
