# Help for every exported cmdlet, the about topic, and the generator's drift checks (build/New-ModuleHelp.ps1).
BeforeDiscovery {
    Import-Module $env:MODELOPTPS_MODULE -Force
    $cmdlets = @((Get-Module ModelOptPS).ExportedCmdlets.Keys | Sort-Object | ForEach-Object { @{ Name = $_ } })

    # Every example of every cmdlet, as Get-Help shows it. An example that calls a command this session does not have
    # yet (a cmdlet still being written) is skipped, and runs as soon as the command exists.
    $examples = foreach ($name in $cmdlets.Name) {
        $i = 0
        foreach ($example in (Get-Help $name -Full).examples.example) {
            $i++
            $tokens = $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($example.code, [ref] $tokens, [ref] $errors)
            $used = $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true).GetCommandName()
            $missing = @($used | Where-Object { $_ -and -not (Get-Command $_ -ErrorAction Ignore) } | Sort-Object -Unique)
            @{ Name = $name; Index = $i; Code = $example.code; Missing = $missing -join ', ' }
        }
    }
}

BeforeAll {
    Import-Module $env:MODELOPTPS_MODULE -Force
    $script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:ModuleFolder = Split-Path $env:MODELOPTPS_MODULE
    $script:Generator = Join-Path $RepoRoot 'build/New-ModuleHelp.ps1'
    $script:Pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    $script:CommonParameters = [System.Management.Automation.Cmdlet]::CommonParameters

    function Get-ParagraphText($Paragraphs) { (@($Paragraphs) | ForEach-Object Text) -join "`n" }

    # Runs the help generator in a fresh pwsh, as build.ps1 does; returns its exit code and everything it printed.
    function Invoke-Generator([string] $HelpSource, [string] $OutputFolder) {
        $output = & $Pwsh -NoProfile -NonInteractive -File $Generator -ModuleFolder $ModuleFolder -HelpSource $HelpSource `
            -OutputFolder $OutputFolder 2>&1 | Out-String
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $output }
    }

    # Writes a hashtable back as a .psd1 (strings, numbers, arrays and hashtables are all help files hold).
    function ConvertTo-Psd1($Value) {
        if ($Value -is [hashtable]) {
            $entries = foreach ($key in $Value.Keys) { "'$key' = $(ConvertTo-Psd1 $Value[$key])" }
            return "@{`n$($entries -join "`n")`n}"
        }
        if ($Value -is [array]) { return "@(`n$((@($Value) | ForEach-Object { ConvertTo-Psd1 $_ }) -join "`n")`n)" }
        return "'$("$Value".Replace("'", "''"))'"
    }
}

Describe 'Help of <Name>' -ForEach $cmdlets {
    BeforeAll {
        $script:Help = Get-Help $Name -Full
        $script:Command = Get-Command $Name
    }

    It 'has a written synopsis, not the generated syntax line' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        $Help.Synopsis | Should -Not -Match "^\s*$([regex]::Escape($Name))\b"
        $Help.Synopsis | Should -Not -Match '<CommonParameters>'
    }

    It 'has a description' {
        (Get-ParagraphText $Help.description).Trim().Length | Should -BeGreaterThan 40
    }

    It 'describes every parameter, with the facts from the cmdlet' {
        $documented = @{}
        foreach ($p in $Help.parameters.parameter) { $documented[$p.name] = $p }
        foreach ($p in $Command.Parameters.Values | Where-Object Name -NotIn $CommonParameters) {
            $documented.Keys | Should -Contain $p.Name -Because "-$($p.Name) is a parameter of $Name"
            $entry = $documented[$p.Name]
            (Get-ParagraphText $entry.description).Trim() | Should -Not -BeNullOrEmpty -Because "-$($p.Name) needs a description"
            $mandatory = -not ($p.ParameterSets.Values | Where-Object { -not $_.IsMandatory })
            $entry.required | Should -Be "$mandatory".ToLowerInvariant() -Because "-$($p.Name) Required?"
            $byValue = [bool]($p.ParameterSets.Values | Where-Object ValueFromPipeline)
            $entry.pipelineInput -like '*ByValue*' | Should -Be $byValue -Because "-$($p.Name) pipeline input"
        }
        @($Help.parameters.parameter).Count | Should -Be @($Command.Parameters.Values | Where-Object Name -NotIn $CommonParameters).Count
    }

    It 'has at least two examples with code and remarks' {
        $examples = @($Help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.code | Should -Not -BeNullOrEmpty
            $example.code | Should -Match ([regex]::Escape($Name))
            (Get-ParagraphText $example.remarks).Trim() | Should -Not -BeNullOrEmpty
        }
    }

    It 'names its input and output types' {
        @($Help.inputTypes.inputType).Count | Should -BeGreaterThan 0
        foreach ($type in $Command.OutputType.Name) { $Help.returnValues.returnValue.type.name | Should -Contain $type }
    }
}

Describe 'Module help' {
    It 'shows a parameter on its own: Get-Help Import-HFModel -Parameter Path' {
        $text = Get-Help Import-HFModel -Parameter Path | Out-String
        $text | Should -Match 'checkpoint folder'
        $text | Should -Match 'True \(ByValue, ByPropertyName\)'
        $text | Should -Match 'FullName'
    }

    It 'marks wildcard parameters from the cmdlet: Get-QuantPlan -Name' {
        (Get-Help Get-QuantPlan -Parameter Name).globbing | Should -Be 'true'
        (Get-Help Get-QuantPlan -Parameter Decision).globbing | Should -Be 'false'
    }

    It 'shows defaults read from the cmdlet and enum values in the syntax' {
        (Get-Help Set-QuantConfig -Parameter Preset).defaultValue | Should -Be 'NVFP4_DEFAULT'
        (Get-Help Export-Nvfp4 -Parameter Format).defaultValue | Should -Be 'ModelOpt'
        (Get-Help Export-Nvfp4 -Full | Out-String -Width 300) | Should -Match '-Format \{ModelOpt \| CompressedTensors\}'
    }

    It 'has the about topic: Get-Help about_ModelOptPS' {
        $text = Get-Help about_ModelOptPS | Out-String
        $text | Should -Match 'about_ModelOptPS'
        $text | Should -Match 'NO SILENT FAILURES'
        $text | Should -Match 'NVFP4_DEFAULT'
        $text | Should -Match 'CompressedTensors'
        foreach ($name in (Get-Module ModelOptPS).ExportedCmdlets.Keys) { $text | Should -Match ([regex]::Escape($name)) }
    }

    It 'ships valid MAML and leaves the help sources out of the module' {
        $maml = Join-Path $ModuleFolder 'en-US/ModelOptPS.dll-Help.xml'
        { [xml](Get-Content $maml -Raw) } | Should -Not -Throw
        ([xml](Get-Content $maml -Raw)).GetElementsByTagName('command:command').Count |
            Should -Be (Get-Module ModelOptPS).ExportedCmdlets.Count
        Test-Path (Join-Path $ModuleFolder 'help') | Should -BeFalse
    }
}

Describe 'Help examples' {
    # Each example runs in a fresh folder holding the shipped sample model at ./ckpt, as the help's examples assume
    # (a symbolic link: the examples only read it). Warnings are allowed; errors are not.
    BeforeAll {
        $script:ExampleCheckpoint = Join-Path $RepoRoot 'sample/qwen3-moe-tiny'
    }

    It 'example <Index> of <Name> runs on the sample model' -ForEach $examples {
        if ($Missing) { Set-ItResult -Skipped -Because "it calls $Missing, which this module does not have yet" }
        $folder = Join-Path $TestDrive "$Name-$Index"
        New-Item -ItemType Directory $folder | Out-Null
        New-Item -ItemType SymbolicLink -Path (Join-Path $folder 'ckpt') -Target $ExampleCheckpoint | Out-Null
        $WarningPreference = 'SilentlyContinue'
        Push-Location $folder
        try {
            $records = @(& ([scriptblock]::Create($Code)) 2>&1)
            $null = $records | Out-String   # the format views run too
        }
        finally { Pop-Location }
        $records | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] } | Should -BeNullOrEmpty
    }
}

Describe 'New-ModuleHelp.ps1' {
    BeforeAll {
        $script:Source = Join-Path $RepoRoot 'module/help'
    }

    It 'writes MAML and the about topic from the help sources' {
        $out = Join-Path $TestDrive 'good'
        $run = Invoke-Generator $Source $out
        $run.ExitCode | Should -Be 0 -Because $run.Output
        Test-Path (Join-Path $out 'ModelOptPS.dll-Help.xml') | Should -BeTrue
        (Get-Content (Join-Path $out 'about_ModelOptPS.help.txt') -Raw) | Should -Not -Match '\{\{CMDLETS\}\}'
    }

    It 'fails the build, naming each problem, when help and code drift apart' {
        $bad = Join-Path $TestDrive 'drifted'
        Copy-Item $Source $bad -Recurse
        # A cmdlet without help, a parameter without a description, a parameter that does not exist, one example only,
        # and an example that passes a parameter the cmdlet does not have.
        Remove-Item (Join-Path $bad 'Get-QuantPlan.psd1')
        $export = Import-PowerShellDataFile (Join-Path $bad 'Export-Nvfp4.psd1')
        $export.Parameters.Remove('Force')
        $export.Parameters['Overwrite'] = 'A parameter that Export-Nvfp4 does not have.'
        ConvertTo-Psd1 $export | Set-Content (Join-Path $bad 'Export-Nvfp4.psd1')
        $environment = Import-PowerShellDataFile (Join-Path $bad 'Get-ModelOptEnvironment.psd1')
        $environment.Examples = @($environment.Examples[0])
        ConvertTo-Psd1 $environment | Set-Content (Join-Path $bad 'Get-ModelOptEnvironment.psd1')
        $import = Import-PowerShellDataFile (Join-Path $bad 'Import-HFModel.psd1')
        $import.Examples[0].Code = 'Import-HFModel -Paths ./ckpt'
        ConvertTo-Psd1 $import | Set-Content (Join-Path $bad 'Import-HFModel.psd1')

        $out = Join-Path $TestDrive 'drifted-out'
        $run = Invoke-Generator $bad $out
        $run.ExitCode | Should -Be 1
        $run.Output | Should -Match 'Get-QuantPlan is exported but has no help: create \S*drifted/Get-QuantPlan\.psd1'
        $run.Output | Should -Match 'Synopsis; Description; Parameters with a description for each of: InputObject, Name, Decision, Kind, ExpertUnits'
        $run.Output | Should -Match 'parameter -Force of Export-Nvfp4 has no description'
        $run.Output | Should -Match 'describes parameter -Overwrite, which Export-Nvfp4 does not have'
        $run.Output | Should -Match 'Get-ModelOptEnvironment needs at least two Examples \(has 1\)'
        $run.Output | Should -Match 'Import-HFModel has no parameter -Paths'
        Test-Path $out | Should -BeFalse -Because 'nothing is written when the help is wrong'
    }
}
