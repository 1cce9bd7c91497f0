# Every cmdlet x every class of bad input: one ErrorRecord with the expected FullyQualifiedErrorId, category and
# target, never a raw .NET exception, and no source folder changed.
BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    Add-Type -Path $env:MODELOPTPS_FIXTURES
    $WarningPreference = 'SilentlyContinue'

    function New-Fixture([string] $Name, [string] $Family = 'llama') {
        [ModelOptPS.Fixtures.TinyCheckpoints]::Write($Family, (Join-Path $TestDrive $Name), $null, 1234, 10000000000)
    }

    # Offsets of one tensor's bytes in a single-shard checkpoint, from its safetensors header.
    function Get-TensorSpan([string] $Shard, [string] $Name) {
        $bytes = [IO.File]::ReadAllBytes($Shard)
        $headerLength = [BitConverter]::ToUInt64($bytes, 0)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $headerLength) | ConvertFrom-Json
        $offsets = $header.$Name.data_offsets
        [pscustomobject]@{ Start = 8 + $headerLength + $offsets[0]; Length = $offsets[1] - $offsets[0] }
    }

    # A safetensors file from name -> @{ DType; Shape; Bytes } (in order, contiguous).
    function Write-Safetensors([string] $Path, [System.Collections.Specialized.OrderedDictionary] $Tensors) {
        $header = [ordered]@{}
        $data = [Collections.Generic.List[byte]]::new()
        foreach ($name in $Tensors.Keys) {
            $t = $Tensors[$name]
            $header[$name] = [ordered]@{ dtype = $t.DType; shape = @($t.Shape); data_offsets = @($data.Count, ($data.Count + $t.Bytes.Length)) }
            $data.AddRange([byte[]] $t.Bytes)
        }
        $json = $header | ConvertTo-Json -Compress -Depth 5
        $json += ' ' * ((8 - $json.Length % 8) % 8)
        $headerBytes = [Text.Encoding]::UTF8.GetBytes($json)
        [IO.File]::WriteAllBytes($Path, [byte[]] ([BitConverter]::GetBytes([uint64] $headerBytes.Length) + $headerBytes + $data.ToArray()))
    }

    # A checkpoint whose only weight is stored as F8_E4M3 next to the given scale tensors (a hand-made header).
    function New-Fp8Checkpoint([string] $Name, [string[]] $Scales) {
        $folder = New-Item -ItemType Directory (Join-Path $TestDrive $Name)
        Copy-Item (Join-Path $Source 'config.json') $folder
        $tensors = [ordered]@{ 'model.layers.0.self_attn.q_proj.weight' = @{ DType = 'F8_E4M3'; Shape = 16, 16; Bytes = [byte[]]::new(256) } }
        foreach ($scale in $Scales) { $tensors["model.layers.0.self_attn.q_proj.$scale"] = @{ DType = 'F32'; Shape = 1, 1; Bytes = [byte[]]::new(4) } }
        Write-Safetensors (Join-Path $folder 'model.safetensors') $tensors
        $folder.FullName
    }

    function Get-FolderState([string] $Path) {
        Get-ChildItem $Path -Recurse -File | Sort-Object FullName |
            ForEach-Object { '{0} {1} {2}' -f $_.FullName, $_.Length, (Get-FileHash $_.FullName -Algorithm SHA256).Hash }
    }

    $script:Source = New-Fixture 'source'
    $script:NaN = New-Fixture 'nan'
    $shard = Join-Path $NaN 'model.safetensors'
    $span = Get-TensorSpan $shard 'model.layers.0.self_attn.q_proj.weight'
    $bytes = [IO.File]::ReadAllBytes($shard)
    $bytes[$span.Start + 10] = 0xC0; $bytes[$span.Start + 11] = 0x7F # bf16 NaN at element 5
    [IO.File]::WriteAllBytes($shard, $bytes)

    $script:Truncated = New-Fixture 'truncated'
    $shard = Join-Path $Truncated 'model.safetensors'
    $bytes = [IO.File]::ReadAllBytes($shard)
    [IO.File]::WriteAllBytes($shard, $bytes[0..($bytes.Length - 100)])

    $script:NotCheckpoint = (New-Item -ItemType Directory (Join-Path $TestDrive 'notes')).FullName
    Set-Content (Join-Path $NotCheckpoint 'readme.txt') 'not a model'
    $script:Missing = Join-Path $TestDrive 'missing'

    $script:ModelOptExport = (Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $TestDrive 'export-modelopt')).Path
    $script:CtExport = (Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $TestDrive 'export-ct') -Format CompressedTensors).Path
    $script:BlockFp8 = New-Fp8Checkpoint 'block-fp8' 'weight_scale_inv'
    $script:Fp8 = New-Fp8Checkpoint 'fp8' 'weight_scale', 'input_scale'

    $script:BadRecipe = Join-Path $TestDrive 'bad-recipe.yaml'
    Set-Content $BadRecipe "quant_cfg: [unclosed"
    $script:ArrayLine = Join-Path $TestDrive 'array.jsonl'
    Set-Content $ArrayLine '{"text": "fine"}', '[1, 2, 3]'
    $script:NumberRole = Join-Path $TestDrive 'role.jsonl'
    Set-Content $NumberRole '{"messages": [{"role": 1, "content": "hi"}]}'
    $script:Occupied = (New-Item -ItemType Directory (Join-Path $TestDrive 'occupied')).FullName
    Set-Content (Join-Path $Occupied 'mine.txt') 'user data'
    $script:AFile = Join-Path $TestDrive 'a-file.txt'
    Set-Content $AFile 'x'

    $script:Sources = $Source, $NaN, $Truncated, $NotCheckpoint, $ModelOptExport, $CtExport, $BlockFp8, $Fp8, $Occupied
    $script:Small = @{ NumSamples = 2; SequenceLength = 16 }

    # Runs a case and returns its error records: non-terminating ones from the error stream, a terminating one caught.
    function Invoke-Case([scriptblock] $Run) {
        try { @(& $Run 2>&1 | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] }) }
        catch { , $_ }
    }
}

Describe 'ErrorRecords' {
    It '<Command>: <Case> -> <Id> (<Category>)' -ForEach @(
        @{ Command = 'Import-HFModel'; Case = 'missing path'; Id = 'CheckpointFolderNotFound'; Category = 'ObjectNotFound'; Target = 'Missing'; Run = { Import-HFModel $Missing } }
        @{ Command = 'Import-HFModel'; Case = 'not a checkpoint'; Id = 'ConfigNotFound'; Category = 'ObjectNotFound'; Target = 'NotCheckpoint'; Run = { Import-HFModel $NotCheckpoint } }
        @{ Command = 'Import-HFModel'; Case = 'truncated safetensors'; Id = 'SafetensorsTruncated'; Category = 'InvalidData'; Target = 'Truncated'; Run = { Import-HFModel $Truncated } }
        @{ Command = 'Import-HFModel'; Case = 'ModelOpt NVFP4 export'; Id = 'CheckpointAlreadyQuantized'; Category = 'InvalidOperation'; Target = 'ModelOptExport'; Message = 'ModelOpt W4A16_NVFP4'; Run = { Import-HFModel $ModelOptExport } }
        @{ Command = 'Import-HFModel'; Case = 'compressed-tensors export'; Id = 'CheckpointAlreadyQuantized'; Category = 'InvalidOperation'; Target = 'CtExport'; Message = 'compressed-tensors NVFP4'; Run = { Import-HFModel $CtExport } }
        @{ Command = 'Import-HFModel'; Case = 'block-FP8 weights'; Id = 'CheckpointAlreadyQuantized'; Category = 'InvalidOperation'; Target = 'BlockFp8'; Message = 'block-FP8'; Run = { Import-HFModel $BlockFp8 } }
        @{ Command = 'Import-HFModel'; Case = 'FP8 weights'; Id = 'CheckpointAlreadyQuantized'; Category = 'InvalidOperation'; Target = 'Fp8'; Message = 'FP8 \(per-tensor'; Run = { Import-HFModel $Fp8 } }
        @{ Command = 'Set-QuantConfig'; Case = 'bad recipe'; Id = 'RecipeInvalid'; Category = 'InvalidData'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -RecipePath $BadRecipe } }
        @{ Command = 'Set-QuantConfig'; Case = 'unknown preset'; Id = 'UnknownPreset'; Category = 'InvalidArgument'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -Preset NOPE } }
        @{ Command = 'Set-QuantConfig'; Case = 'plan quantizing nothing'; Id = 'PlanQuantizesNothing'; Category = 'InvalidOperation'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -Exclude '*' } }
        @{ Command = 'Get-QuantPlan'; Case = 'no plan'; Id = 'NoQuantPlan'; Category = 'InvalidOperation'; Target = 'model:Source'; Run = { Import-HFModel $Source | Get-QuantPlan } }
        @{ Command = 'Invoke-Calibration'; Case = 'JSONL line not an object'; Id = 'DatasetInvalid'; Category = 'InvalidData'; Target = 'model:Source'; Message = 'line 2 is not a JSON object'; Run = { Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration $ArrayLine @Small } }
        @{ Command = 'Invoke-Calibration'; Case = 'JSONL role not a string'; Id = 'DatasetInvalid'; Category = 'InvalidData'; Target = 'model:Source'; Message = 'line 1: message 1'; Run = { Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration $NumberRole @Small } }
        @{ Command = 'Invoke-Calibration'; Case = 'missing dataset'; Id = 'DatasetNotFound'; Category = 'ObjectNotFound'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration $Missing @Small } }
        @{ Command = 'Invoke-Calibration'; Case = 'NaN weight'; Id = 'NonFiniteActivation'; Category = 'InvalidData'; Target = 'model:NaN'; Run = { Import-HFModel $NaN | Set-QuantConfig | Invoke-Calibration @Small } }
        @{ Command = 'Invoke-Calibration'; Case = 'NumSamples x SequenceLength overflow'; Id = 'TooManyTokens'; Category = 'InvalidArgument'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration -NumSamples 100000 -SequenceLength 1000000 } }
        @{ Command = 'Invoke-Calibration'; Case = 'BatchSize x SequenceLength overflow'; Id = 'ChunkTooLarge'; Category = 'InvalidArgument'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig | Invoke-Calibration -BatchSize 100000 -SequenceLength 1000000 -NumSamples 1 } }
        @{ Command = 'Export-Nvfp4'; Case = 'no plan'; Id = 'NoQuantPlan'; Category = 'InvalidOperation'; Target = 'model:Source'; Run = { Import-HFModel $Source | Export-Nvfp4 (Join-Path $TestDrive 'x1') } }
        @{ Command = 'Export-Nvfp4'; Case = 'calibration required'; Id = 'CalibrationRequired'; Category = 'InvalidOperation'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig | Export-Nvfp4 (Join-Path $TestDrive 'x2') } }
        @{ Command = 'Export-Nvfp4'; Case = 'target exists'; Id = 'TargetExists'; Category = 'ResourceExists'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 $Occupied } }
        @{ Command = 'Export-Nvfp4'; Case = 'NaN weight'; Id = 'NonFiniteWeight'; Category = 'InvalidData'; Target = 'model:NaN'; Message = 'q_proj'; Run = { Import-HFModel $NaN | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $TestDrive 'x3') } }
        @{ Command = 'Export-Nvfp4'; Case = 'target under a file'; Id = 'ExportWriteFailed'; Category = 'WriteError'; Target = 'model:Source'; Message = "^Writing the export '.*' failed: "; Run = { Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $AFile 'out') } }
        @{ Command = 'Measure-QuantQuality'; Case = 'no plan'; Id = 'NoQuantPlan'; Category = 'InvalidOperation'; Target = 'model:Source'; Run = { Import-HFModel $Source | Measure-QuantQuality @Small } }
        @{ Command = 'Measure-QuantQuality'; Case = 'NaN weight'; Id = 'NonFiniteWeight'; Category = 'InvalidData'; Target = 'model:NaN'; Run = { Import-HFModel $NaN | Set-QuantConfig -Preset W4A16_NVFP4 | Measure-QuantQuality @Small } }
        @{ Command = 'Measure-QuantQuality'; Case = 'JSONL line not an object'; Id = 'DatasetInvalid'; Category = 'InvalidData'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Measure-QuantQuality -Dataset $ArrayLine @Small } }
        @{ Command = 'Measure-QuantQuality'; Case = 'NumSamples x SequenceLength overflow'; Id = 'TooManyTokens'; Category = 'InvalidArgument'; Target = 'model:Source'; Run = { Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Measure-QuantQuality -NumSamples 100000 -SequenceLength 1000000 } }
        @{ Command = 'Measure-QuantQuality'; Case = 'not an export'; Id = 'NotAnNvfp4Checkpoint'; Category = 'InvalidData'; Target = 'Source'; Run = { Measure-QuantQuality -Path $Source -Reference $Source @Small } }
        @{ Command = 'Measure-QuantQuality'; Case = 'quantized reference'; Id = 'CheckpointAlreadyQuantized'; Category = 'InvalidOperation'; Target = 'ModelOptExport'; Run = { Measure-QuantQuality -Path $ModelOptExport -Reference $ModelOptExport @Small } }
        @{ Command = 'Test-QuantFormat'; Case = 'missing path'; Id = 'CheckpointFolderNotFound'; Category = 'ObjectNotFound'; Target = 'Missing'; Run = { Test-QuantFormat $Missing } }
        @{ Command = 'Test-QuantFormat'; Case = 'truncated reference'; Id = 'SafetensorsTruncated'; Category = 'InvalidData'; Target = 'ModelOptExport'; Run = { Test-QuantFormat $ModelOptExport -Reference $Truncated } }
    ) {
        $before = foreach ($s in $Sources) { Get-FolderState $s }
        $records = Invoke-Case $Run
        $records.Count | Should -Be 1 -Because ($records | Out-String)
        $record = $records[0]
        $class = (Get-Command $Command).ImplementingType.FullName
        $record.FullyQualifiedErrorId | Should -Be "$Id,$class"
        "$($record.CategoryInfo.Category)" | Should -Be $Category
        $record.Exception | Should -Not -BeOfType [AggregateException]
        if ($Target -like 'model:*') {
            $record.TargetObject | Should -BeOfType [ModelOptPS.Engine.Model.HFModel]
            $record.TargetObject.Path | Should -Be (Get-Variable ($Target -replace '^model:') -ValueOnly)
        }
        else {
            "$($record.TargetObject)" | Should -Be (Get-Variable $Target -ValueOnly)
        }
        if ($Message) { "$record" | Should -Match $Message }
        $after = foreach ($s in $Sources) { Get-FolderState $s }
        $after | Should -Be $before
        Get-ChildItem $TestDrive -Directory -Filter '.*partial*' | Should -BeNullOrEmpty
    }

    It 'Test-QuantFormat -Quiet writes $false next to the error' {
        $out = Test-QuantFormat $Missing -Quiet -ErrorVariable errs -ErrorAction SilentlyContinue
        $out | Should -BeFalse
        $errs[0].FullyQualifiedErrorId | Should -Be 'CheckpointFolderNotFound,ModelOptPS.Cmdlets.TestQuantFormatCommand'
    }

    It 'an error record keeps the original exception for debugging' {
        $null = Import-HFModel $Source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $AFile 'out2') -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -Be 'ExportWriteFailed,ModelOptPS.Cmdlets.ExportNvfp4Command'
        $errs[0].Exception.InnerException | Should -BeOfType [System.IO.IOException]
        $errs[0].Exception.InnerException.Message | Should -Match 'already exists'
    }

    It '-ErrorAction Stop turns the record into a terminating error with the same id' {
        { Import-HFModel $ModelOptExport -ErrorAction Stop } | Should -Throw -ErrorId 'CheckpointAlreadyQuantized,ModelOptPS.Cmdlets.ImportHFModelCommand'
    }
}

Describe 'Ctrl+C' {
    It 'stops Test-QuantFormat mid-verification: the pipeline stops, with no result and no error' {
        $dims = [ModelOptPS.Fixtures.Dims]@{ Hidden = 512; Intermediate = 2048; Layers = 6 }
        $source = [ModelOptPS.Fixtures.TinyCheckpoints]::Write('llama', (Join-Path $TestDrive 'stop-src'), $dims, 1, 10000000000)
        $export = Import-HFModel $source | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 (Join-Path $TestDrive 'stop-out')
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$env:MODELOPTPS_MODULE'; Test-QuantFormat '$($export.Path)' -Reference '$source'; 'after'")
            $output = [Management.Automation.PSDataCollection[psobject]]::new()
            $run = $ps.BeginInvoke([Management.Automation.PSDataCollection[psobject]]::new(), $output)
            $clock = [Diagnostics.Stopwatch]::StartNew()
            while ($ps.Streams.Progress.Count -eq 0 -and -not $run.IsCompleted -and $clock.Elapsed.TotalSeconds -lt 60) { Start-Sleep -Milliseconds 20 }
            $run.IsCompleted | Should -BeFalse -Because 'the verification must still be running when it is stopped'
            $clock.Restart()
            $ps.Stop()
            $clock.Elapsed.TotalSeconds | Should -BeLessThan 2
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $ps.Streams.Error.Count | Should -Be 0
            @($output | Where-Object { $_ -is [ModelOptPS.Engine.Verification.VerificationReport] -or $_ -eq 'after' }).Count | Should -Be 0
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Unexpected failures' {
    BeforeAll {
        $failureRecords = [ModelOptPS.Cmdlets.ModelOptCmdlet].Assembly.GetType('ModelOptPS.Cmdlets.FailureRecords', $true)
        function ConvertTo-Record([Exception] $Exception) {
            $pair = $failureRecords.GetMethod('For').Invoke($null, @($Exception, "Exporting 'm' to '/x'", 'target'))
            [pscustomobject]@{ Record = $pair.Item1; Terminating = $pair.Item2 }
        }
    }

    It '<Name> -> <Id> (<Category>), terminating: <Terminating>' -ForEach @(
        @{ Name = 'UnauthorizedAccessException'; Make = { [UnauthorizedAccessException]::new('Access to the path is denied.') }; Id = 'AccessDenied'; Category = 'PermissionDenied'; Terminating = $false }
        @{ Name = 'FileNotFoundException'; Make = { [IO.FileNotFoundException]::new('gone') }; Id = 'FileNotFound'; Category = 'ObjectNotFound'; Terminating = $false }
        @{ Name = 'IOException'; Make = { [IO.IOException]::new('No space left on device') }; Id = 'FileSystemError'; Category = 'ResourceUnavailable'; Terminating = $false }
        @{ Name = 'OutOfMemoryException'; Make = { [OutOfMemoryException]::new() }; Id = 'OutOfMemory'; Category = 'ResourceUnavailable'; Terminating = $true }
        @{ Name = 'ExternalException'; Make = { [Runtime.InteropServices.ExternalException]::new("shape mismatch`nException raised from add at /pytorch/aten.cpp:12`nframe #0: c10::Error (0x7f)`nframe #1: THSTensor_add") }; Id = 'NativeError'; Category = 'NotSpecified'; Terminating = $true }
        @{ Name = 'InvalidOperationException'; Make = { [InvalidOperationException]::new('Sequence contains no elements') }; Id = 'InternalError'; Category = 'NotSpecified'; Terminating = $true }
    ) {
        $exception = & $Make
        $converted = ConvertTo-Record $exception
        $converted.Record.FullyQualifiedErrorId | Should -Be $Id
        "$($converted.Record.CategoryInfo.Category)" | Should -Be $Category
        $converted.Terminating | Should -Be $Terminating
        $converted.Record.TargetObject | Should -Be 'target'
        $converted.Record.Exception | Should -Be $exception
        $converted.Record.ErrorDetails.Message | Should -BeLike "Exporting 'm' to '/x' failed: *"
        $converted.Record.ErrorDetails.Message | Should -Not -Match 'frame #|Exception raised from'
    }

    It 'an AggregateException is unwrapped to the engine error it holds' {
        $engine = [ModelOptPS.Engine.Errors.ModelOptException]::new('NonFiniteWeight', 'InvalidData', 'NaN in w', '/m')
        $converted = ConvertTo-Record ([AggregateException]::new([InvalidOperationException]::new(), $engine))
        $converted.Record.FullyQualifiedErrorId | Should -Be 'NonFiniteWeight'
        $converted.Record.Exception | Should -Be $engine
        $converted.Terminating | Should -BeFalse
    }

    It 'the native message keeps its reason and drops its frames' {
        $converted = ConvertTo-Record ([Runtime.InteropServices.ExternalException]::new("shape mismatch`nException raised from add`nframe #0: x"))
        $converted.Record.ErrorDetails.Message | Should -Be "Exporting 'm' to '/x' failed: shape mismatch"
    }
}
