#Requires -Version 7.4
<#
.SYNOPSIS
    Writes the module's help (MAML for Get-Help, and about_ModelOptPS) from module/help and the cmdlets' real metadata.
.DESCRIPTION
    The prose lives in module/help/<Verb-Noun>.psd1 (see _Template.psd1); everything the code knows - parameter sets,
    types, mandatory, position, pipeline input, aliases, wildcards, defaults, output types - is read from the staged
    module with Get-Command, so the help cannot state it wrongly. The script fails (exit 1, every problem listed) when
    the two disagree: an exported cmdlet without a help file, a parameter without a description, a described parameter
    or input/output type that does not exist, fewer than two examples, or an example that does not parse, does not
    call its cmdlet, or passes a parameter that the module's cmdlets do not have (and on a missing synopsis or
    description, a synopsis over one 75-character line, or an unknown key). Nothing is written then; the messages say
    which file to create or fix and with what.
.EXAMPLE
    dotnet pwsh -NoProfile -File build/New-ModuleHelp.ps1 -ModuleFolder out/ModelOptPS
#>
[CmdletBinding()]
param(
    # The staged module folder (holds ModelOptPS.psd1 and ModelOptPS.dll).
    [Parameter(Mandatory)] [string] $ModuleFolder,
    # The help sources: one <Verb-Noun>.psd1 per cmdlet and about_ModelOptPS.help.txt.
    [string] $HelpSource = (Join-Path $PSScriptRoot '../module/help'),
    # Where the help files are written; the module's en-US folder unless given.
    [string] $OutputFolder
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ModuleFolder = (Resolve-Path $ModuleFolder).Path
$HelpSource = (Resolve-Path $HelpSource).Path
$intoModule = -not $OutputFolder
if ($intoModule) { $OutputFolder = Join-Path $ModuleFolder 'en-US' }
$module = Import-Module (Join-Path $ModuleFolder 'ModelOptPS.psd1') -Force -PassThru
$cmdlets = @($module.ExportedCmdlets.Values | Sort-Object Name)
$problems = [System.Collections.Generic.List[string]]::new()
$helpFolderText = [IO.Path]::GetRelativePath((Split-Path $PSScriptRoot), $HelpSource).Replace('\', '/')   # as authors see it
if ($helpFolderText.StartsWith('..')) { $helpFolderText = $HelpSource }
$WrapWidth = 70                    # help text columns; Get-Help indents by 4 to 8, and 80-column consoles wrap at 79

$AllowedKeys = 'Synopsis', 'Description', 'Parameters', 'Inputs', 'Outputs', 'Examples', 'Notes', 'RelatedLinks'
$CommonParameters = [System.Management.Automation.Cmdlet]::CommonParameters
# ShouldProcess parameters get the standard text unless the help file describes them.
$StockDescriptions = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

#region Reading the help source and the metadata

function Split-Paragraph([string] $Text) {
    # Blank lines separate paragraphs; a line starting with '- ' starts a list item; other line breaks are wrapping.
    # Each paragraph is re-wrapped at $WrapWidth (Get-Help indents it by 4 or 8), list items with a hanging indent.
    $paragraphs = [System.Collections.Generic.List[string]]::new()
    $current = $null
    foreach ($line in ($Text.Trim() -split '\r?\n')) {
        $trimmed = $line.Trim()
        if (-not $trimmed) { if ($current) { $paragraphs.Add($current) }; $current = $null; continue }
        if ($trimmed.StartsWith('- ') -and $current) { $paragraphs.Add($current); $current = $null }
        $current = if ($current) { "$current $trimmed" } else { $trimmed }
    }
    if ($current) { $paragraphs.Add($current) }
    return , @($paragraphs | ForEach-Object { Format-Wrapped $_ })
}

function Format-Wrapped([string] $Paragraph) {
    $hang = if ($Paragraph.StartsWith('- ')) { '  ' } else { '' }
    $lines = [System.Collections.Generic.List[string]]::new()
    $line = ''
    foreach ($word in $Paragraph -split ' +') {
        if ($line -and ($line.Length + 1 + $word.Length) -gt $WrapWidth) { $lines.Add($line); $line = $hang + $word }
        else { $line = if ($line) { "$line $word" } else { $word } }
    }
    $lines.Add($line)
    return $lines -join "`n"
}

function Get-ElementType([type] $Type) { if ($Type.IsArray) { $Type.GetElementType() } else { $Type } }

function Get-ParameterInfo($Command) {
    # One record per documented parameter, in declaration order, merged across parameter sets.
    $instance = try { [Activator]::CreateInstance($Command.ImplementingType) } catch { $null }
    foreach ($p in $Command.Parameters.Values) {
        if ($p.Name -in $CommonParameters) { continue }
        $sets = @($p.ParameterSets.Values)
        $byValue = [bool]($sets | Where-Object ValueFromPipeline)
        $byName = [bool]($sets | Where-Object ValueFromPipelineByPropertyName)
        $positions = @($sets.Position | Where-Object { $_ -ge 0 } | Sort-Object -Unique)
        $default = $null
        if ($instance -and -not ($sets | Where-Object IsMandatory)) {
            $value = try { $instance.($p.Name) } catch { $null }
            $default = if ($p.SwitchParameter) { "$([bool]$value)" }
            elseif ($null -eq $value -or "$value" -eq '' -or ($value -is [array] -and $value.Count -eq 0)) { $null }
            else { ($value | ForEach-Object { "$_" }) -join ', ' }
        }
        [pscustomobject]@{
            Name      = $p.Name
            Type      = $p.ParameterType
            IsSwitch  = $p.SwitchParameter
            Required  = -not ($sets | Where-Object { -not $_.IsMandatory })
            Position  = if ($positions.Count -eq 1) { "$($positions[0])" } else { 'named' }
            Pipeline  = if ($byValue -or $byName) { 'True ({0})' -f (@(if ($byValue) { 'ByValue' }; if ($byName) { 'ByPropertyName' }) -join ', ') } else { 'False' }
            ByValue   = $byValue
            ByName    = $byName
            Aliases   = if ($p.Aliases.Count) { $p.Aliases -join ', ' } else { 'none' }
            Wildcards = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
            Default   = $default
        }
    }
}

function Get-Description($Entry) { if ($Entry -is [hashtable]) { $Entry['Description'] } else { $Entry } }

function Test-Help($Command, [hashtable] $Help, [string] $File, $Parameters) {
    $name = $Command.Name
    foreach ($key in $Help.Keys | Where-Object { $_ -notin $AllowedKeys }) {
        $problems.Add("${File}: unknown key '$key' (allowed: $($AllowedKeys -join ', ')).")
    }
    foreach ($key in 'Synopsis', 'Description') {
        if (-not "$($Help[$key])".Trim()) { $problems.Add("${File}: '$key' is missing or empty.") }
    }
    $synopsis = "$($Help['Synopsis'])".Trim()
    if ($synopsis -match '\n' -or $synopsis.Length -gt 75) {
        $problems.Add("${File}: the Synopsis must be one line of at most 75 characters (it has $($synopsis.Length)); put the rest in the Description.")
    }
    $described = if ($Help['Parameters'] -is [hashtable]) { $Help['Parameters'] } else { @{} }
    foreach ($p in $Parameters) {
        if ($StockDescriptions.ContainsKey($p.Name) -and -not $described.ContainsKey($p.Name)) { continue }
        if (-not "$(Get-Description $described[$p.Name])".Trim()) {
            $problems.Add("${File}: parameter -$($p.Name) of $name has no description; add Parameters.$($p.Name) = '<what it does>'.")
        }
    }
    foreach ($key in $described.Keys | Where-Object { $_ -notin $Parameters.Name }) {
        $problems.Add("${File}: describes parameter -$key, which $name does not have (parameters: $($Parameters.Name -join ', ')).")
    }

    # Inputs: every type a parameter takes from the pipeline by value; other types only if something binds by property name.
    $inputs = if ($Help['Inputs'] -is [hashtable]) { $Help['Inputs'] } else { @{} }
    $pipedTypes = @($Parameters | Where-Object ByValue | ForEach-Object { (Get-ElementType $_.Type).FullName } | Sort-Object -Unique)
    foreach ($t in $pipedTypes | Where-Object { -not $inputs.ContainsKey($_) -or -not "$($inputs[$_])".Trim() }) {
        $problems.Add("${File}: Inputs has no description for '$t', which $name takes from the pipeline.")
    }
    if (-not ($Parameters | Where-Object ByName)) {
        foreach ($t in $inputs.Keys | Where-Object { $_ -notin $pipedTypes }) {
            $problems.Add("${File}: Inputs describes '$t', but $name takes no such object from the pipeline (it takes: $(if ($pipedTypes) { $pipedTypes -join ', ' } else { 'nothing' })).")
        }
    }
    # Outputs: exactly the [OutputType] types.
    $outputs = if ($Help['Outputs'] -is [hashtable]) { $Help['Outputs'] } else { @{} }
    $declared = @($Command.OutputType.Name | Sort-Object -Unique)
    foreach ($t in $declared | Where-Object { -not $outputs.ContainsKey($_) -or -not "$($outputs[$_])".Trim() }) {
        $problems.Add("${File}: Outputs has no description for '$t', an [OutputType] of $name.")
    }
    foreach ($t in $outputs.Keys | Where-Object { $_ -notin $declared }) {
        $problems.Add("${File}: Outputs describes '$t', which is not an [OutputType] of $name ($(if ($declared) { $declared -join ', ' } else { 'none declared' })).")
    }

    $examples = @($Help['Examples'])
    if ($examples.Count -lt 2 -or $null -eq $Help['Examples']) {
        $problems.Add("${File}: $name needs at least two Examples (has $(if ($Help['Examples']) { $examples.Count } else { 0 })).")
    }
    $i = 0
    foreach ($example in $examples | Where-Object { $null -ne $_ }) {
        $i++
        if ($example -isnot [hashtable] -or -not "$($example['Title'])".Trim() -or -not "$($example['Code'])".Trim()) {
            $problems.Add("${File}: example $i needs a Title and Code (and Remarks).")
            continue
        }
        Test-ExampleCode $name $example['Code'] "${File}: example $i"
    }
}

function Test-ExampleCode([string] $Name, [string] $Code, [string] $Where) {
    # The code must parse, call the cmdlet it documents, and pass only parameters (full names or aliases) that the
    # module's cmdlets really have. Commands from other modules, or cmdlets not written yet, are not checked.
    $tokens = $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseInput($Code, [ref] $tokens, [ref] $errors)
    foreach ($e in $errors) { $problems.Add("${Where}: does not parse: $($e.Message) (line $($e.Extent.StartLineNumber)).") }
    $calls = $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)
    if (-not ($calls | Where-Object { $_.GetCommandName() -eq $Name })) { $problems.Add("${Where}: does not call $Name.") }
    foreach ($call in $calls) {
        $target = $module.ExportedCmdlets[[string] $call.GetCommandName()]
        if (-not $target) { continue }
        $known = @($target.Parameters.Values | ForEach-Object { $_.Name; $_.Aliases })
        foreach ($used in $call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
            if ($used.ParameterName -notin $known) {
                $problems.Add("${Where}: $($target.Name) has no parameter -$($used.ParameterName) (write full parameter names).")
            }
        }
    }
}

function Get-MissingHelpMessage($Command, $Parameters, [string] $File) {
    $pipedTypes = @($Parameters | Where-Object ByValue | ForEach-Object { "'$((Get-ElementType $_.Type).FullName)'" } | Sort-Object -Unique)
    $documented = @($Parameters | Where-Object { -not $StockDescriptions.ContainsKey($_.Name) } | ForEach-Object Name)
    return ("$($Command.Name) is exported but has no help: create $File (copy $helpFolderText/_Template.psd1) with " +
        "Synopsis; Description; Parameters with a description for each of: $(if ($documented) { $documented -join ', ' } else { '(none)' }); " +
        "Inputs keyed by: $(if ($pipedTypes) { $pipedTypes -join ', ' } else { '(none: leave it empty)' }); " +
        "Outputs keyed by: $(if ($Command.OutputType) { ($Command.OutputType.Name | ForEach-Object { "'$_'" }) -join ', ' } else { '(none)' }); " +
        "Examples (at least two, each @{ Title; Code; Remarks }); optionally Notes (error ids) and RelatedLinks.")
}

#endregion

#region Writing MAML

$ns = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}

function Write-Element($W, [string] $QName, [string] $Text) {
    $prefix, $local = $QName -split ':'
    $W.WriteElementString($prefix, $local, $ns[$prefix], $Text)
}

function Start-Element($W, [string] $QName) {
    $prefix, $local = $QName -split ':'
    $W.WriteStartElement($prefix, $local, $ns[$prefix])
}

function Write-Paragraphs($W, [string] $QName, [string] $Text, [switch] $BlankAfter) {
    Start-Element $W $QName
    foreach ($para in (Split-Paragraph $Text)) { Write-Element $W 'maml:para' $para }
    if ($BlankAfter) { Write-Element $W 'maml:para' '' }
    $W.WriteEndElement()
}

function Write-Type($W, [type] $Type) {
    Start-Element $W 'dev:type'
    Write-Element $W 'maml:name' $Type.FullName
    $W.WriteEndElement()
}

function Write-Parameter($W, $P, [string] $Description, [string] $Required, [string] $Position, [bool] $InSyntax) {
    Start-Element $W 'command:parameter'
    $W.WriteAttributeString('required', $Required)
    $W.WriteAttributeString('variableLength', "$($P.Type.IsArray)".ToLowerInvariant())
    $W.WriteAttributeString('globbing', "$($P.Wildcards)".ToLowerInvariant())
    $W.WriteAttributeString('pipelineInput', $P.Pipeline)
    $W.WriteAttributeString('position', $Position)
    $W.WriteAttributeString('aliases', $P.Aliases)
    Write-Element $W 'maml:name' $P.Name
    Write-Paragraphs $W 'maml:description' $Description
    $element = Get-ElementType $P.Type
    if ($InSyntax -and $element.IsEnum) {
        Start-Element $W 'command:parameterValueGroup'
        foreach ($value in [enum]::GetNames($element)) {
            Start-Element $W 'command:parameterValue'
            $W.WriteAttributeString('required', 'false')
            $W.WriteAttributeString('variableLength', 'false')
            $W.WriteString($value)
            $W.WriteEndElement()
        }
        $W.WriteEndElement()
    }
    if (-not ($InSyntax -and $P.IsSwitch)) {
        Start-Element $W 'command:parameterValue'
        $W.WriteAttributeString('required', "$(-not $P.IsSwitch)".ToLowerInvariant())
        $W.WriteAttributeString('variableLength', "$($P.Type.IsArray)".ToLowerInvariant())
        $W.WriteString($P.Type.Name)
        $W.WriteEndElement()
    }
    Write-Type $W $P.Type
    Write-Element $W 'dev:defaultValue' $(if ($P.Default) { $P.Default } else { 'None' })
    $W.WriteEndElement()
}

function Write-Command($W, $Command, [hashtable] $Help, $Parameters) {
    $described = $Help['Parameters']
    $descriptions = @{}
    foreach ($p in $Parameters) {
        $entry = if ($described -and $described.ContainsKey($p.Name)) { $described[$p.Name] } else { $StockDescriptions[$p.Name] }
        $descriptions[$p.Name] = Get-Description $entry
        if ($entry -is [hashtable] -and $entry['Default']) { $p.Default = $entry['Default'] }
    }

    Start-Element $W 'command:command'
    Start-Element $W 'command:details'
    Write-Element $W 'command:name' $Command.Name
    Write-Element $W 'command:verb' $Command.Verb
    Write-Element $W 'command:noun' $Command.Noun
    Start-Element $W 'maml:description'
    Write-Element $W 'maml:para' $Help['Synopsis'].Trim()   # one line, never wrapped
    $W.WriteEndElement()
    $W.WriteEndElement()
    Write-Paragraphs $W 'maml:description' $Help['Description']

    Start-Element $W 'command:syntax'
    foreach ($set in $Command.ParameterSets) {
        Start-Element $W 'command:syntaxItem'
        Write-Element $W 'maml:name' $Command.Name
        # PowerShell's own order: positional parameters by position, then the rest as declared.
        $inSet = @($set.Parameters | Where-Object { $_.Name -notin $CommonParameters })
        $ordered = @($inSet | Where-Object Position -GE 0 | Sort-Object Position) + @($inSet | Where-Object Position -LT 0)
        foreach ($sp in $ordered) {
            $p = $Parameters | Where-Object Name -EQ $sp.Name
            $position = if ($sp.Position -ge 0) { "$($sp.Position)" } else { 'named' }
            Write-Parameter $W $p $descriptions[$p.Name] "$($sp.IsMandatory)".ToLowerInvariant() $position $true
        }
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    Start-Element $W 'command:parameters'
    foreach ($p in $Parameters) {
        Write-Parameter $W $p $descriptions[$p.Name] "$($p.Required)".ToLowerInvariant() $p.Position $false
    }
    $W.WriteEndElement()

    Start-Element $W 'command:inputTypes'
    $inputs = if ($Help['Inputs'] -is [hashtable]) { $Help['Inputs'] } else { @{} }
    if ($inputs.Count -eq 0) { $inputs = @{ None = "You cannot pipe objects to $($Command.Name)." } }
    foreach ($key in $inputs.Keys | Sort-Object) {
        Start-Element $W 'command:inputType'
        Start-Element $W 'dev:type'; Write-Element $W 'maml:name' $key; $W.WriteEndElement()
        Write-Paragraphs $W 'maml:description' $inputs[$key]
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    Start-Element $W 'command:returnValues'
    $outputs = if ($Help['Outputs'] -is [hashtable]) { $Help['Outputs'] } else { @{} }
    if ($outputs.Count -eq 0) { $outputs = @{ None = "$($Command.Name) returns nothing." } }
    foreach ($key in $outputs.Keys | Sort-Object) {
        Start-Element $W 'command:returnValue'
        Start-Element $W 'dev:type'; Write-Element $W 'maml:name' $key; $W.WriteEndElement()
        Write-Paragraphs $W 'maml:description' $outputs[$key]
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    if ($Help['Notes']) {
        Start-Element $W 'maml:alertSet'
        Write-Paragraphs $W 'maml:alert' $Help['Notes']
        $W.WriteEndElement()
    }

    Start-Element $W 'command:examples'
    $i = 0
    foreach ($example in $Help['Examples']) {
        $i++
        Start-Element $W 'command:example'
        Write-Element $W 'maml:title' ("-------- Example {0}: {1} --------" -f $i, $example['Title'])
        Write-Element $W 'dev:code' $example['Code'].Trim()
        Write-Paragraphs $W 'dev:remarks' "$($example['Remarks'])" -BlankAfter   # a blank line before the next example
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    Start-Element $W 'command:relatedLinks'
    foreach ($link in @($Help['RelatedLinks']) | Where-Object { $_ }) {
        Start-Element $W 'maml:navigationLink'
        Write-Element $W 'maml:linkText' $link
        Write-Element $W 'maml:uri' $(if ($link -match '^https?://') { $link } else { '' })
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteEndElement()
}

#endregion

$entries = foreach ($command in $cmdlets) {
    $parameters = @(Get-ParameterInfo $command)
    $file = Join-Path $HelpSource "$($command.Name).psd1"
    $shown = "$helpFolderText/$($command.Name).psd1"
    if (-not (Test-Path $file)) { $problems.Add((Get-MissingHelpMessage $command $parameters $shown)); continue }
    $help = try { Import-PowerShellDataFile $file } catch { $problems.Add("${shown}: cannot be read: $($_.Exception.Message)"); continue }
    Test-Help $command $help $shown $parameters
    [pscustomobject]@{ Command = $command; Help = $help; Parameters = $parameters }
}
foreach ($orphan in Get-ChildItem $HelpSource -Filter '*-*.psd1' | Where-Object { $_.BaseName -notin $cmdlets.Name }) {
    $problems.Add("$helpFolderText/$($orphan.Name) documents a cmdlet the module does not export; delete it or export the cmdlet.")
}
$aboutSource = Join-Path $HelpSource 'about_ModelOptPS.help.txt'
if (-not (Test-Path $aboutSource)) { $problems.Add("$helpFolderText/about_ModelOptPS.help.txt is missing.") }

if ($problems.Count) {
    $host.UI.WriteErrorLine("The module's help does not match its cmdlets ($($problems.Count) problem(s)); fix ${helpFolderText}:")
    foreach ($problem in $problems) { $host.UI.WriteErrorLine("  - $problem") }
    exit 1
}

New-Item -ItemType Directory -Path $OutputFolder -Force | Out-Null
$mamlPath = Join-Path $OutputFolder "$([IO.Path]::GetFileName($module.Path))-Help.xml"
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
$writer = [System.Xml.XmlWriter]::Create($mamlPath, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($prefix in 'maml', 'command', 'dev') { $writer.WriteAttributeString('xmlns', $prefix, $null, $ns[$prefix]) }
    foreach ($entry in $entries) { Write-Command $writer $entry.Command $entry.Help $entry.Parameters }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally { $writer.Dispose() }

# The about topic: the source text, with the list of cmdlets and their synopses filled in from the help files.
$list = ($entries | ForEach-Object {
        "    $($_.Command.Name)"
        (Format-Wrapped $_.Help['Synopsis'].Trim()) -split "`n" | ForEach-Object { "        $_" }
    }) -join [Environment]::NewLine
$about = (Get-Content $aboutSource -Raw).Replace('{{CMDLETS}}', $list)
Set-Content -Path (Join-Path $OutputFolder 'about_ModelOptPS.help.txt') -Value $about -NoNewline

# build.ps1 stages module/* wholesale; the help sources are build input, not part of the module.
$stagedSource = Join-Path $ModuleFolder 'help'
if ($intoModule -and (Test-Path $stagedSource) -and $stagedSource -ne $HelpSource) { Remove-Item $stagedSource -Recurse -Force }
Write-Host "Help for $($cmdlets.Count) cmdlets written to $mamlPath"
