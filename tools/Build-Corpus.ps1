<#
.SYNOPSIS
    Rebuilds the built-in calibration corpus (src/Engine/Corpus/corpus.jsonl) from Debian 12's Python 3.11 packages.
.DESCRIPTION
    Sources, all under the PSF License (src/Engine/Corpus/LICENSE-PSF.txt):
      prose     the Python tutorial            python3.11-doc 3.11.2-6+deb12u9, html/_sources/tutorial/*.rst.txt
      dialogue  the Python FAQ (questions and answers)                           html/_sources/faq/*.rst.txt
      code      standard-library modules       libpython3.11-minimal/stdlib, /usr/lib/python3.11/<module>.py
    Documents are cut at blank lines into pieces of at most ~2000 characters; every tenth piece (index % 10 == 9)
    is held out for evaluation and is never used for calibration or training.
.EXAMPLE
    apt-get download python3.11-doc; dpkg -x python3.11-doc_*.deb /tmp/pydoc
    dotnet pwsh -NoProfile -File tools/Build-Corpus.ps1 -DocRoot /tmp/pydoc/usr/share/doc/python3.11/html/_sources
#>
param(
    [Parameter(Mandatory)] [string] $DocRoot,
    [string] $StdlibRoot = '/usr/lib/python3.11',
    [string] $OutFile = (Join-Path $PSScriptRoot '../src/Engine/Corpus/corpus.jsonl'),
    [int] $MaxChars = 2000
)
$ErrorActionPreference = 'Stop'
$codeModules = 'textwrap', 'heapq', 'bisect', 'fractions', 'shlex', 'colorsys', 'calendar'

function Split-Document([string] $Text) {
    $piece = [System.Text.StringBuilder]::new()
    foreach ($block in ($Text -replace "`r", '') -split "`n\s*`n") {
        if ($piece.Length -gt 0 -and $piece.Length + $block.Length -gt $MaxChars) { $piece.ToString(); [void]$piece.Clear() }
        if ($piece.Length -gt 0) { [void]$piece.Append("`n`n") }
        [void]$piece.Append($block.TrimEnd())
    }
    if ($piece.Length -gt 0) { $piece.ToString() }
}

# Drop reStructuredText index/label directives; keep prose, examples and interactive sessions.
function Get-RstText([string] $Path) {
    (Get-Content $Path -Raw) -split "`n" | Where-Object { $_ -notmatch '^\.\. (index|_[^:]+|highlight|sectionauthor|moduleauthor|toctree)::?' } | Join-String -Separator "`n"
}

$sources = @(
    Get-ChildItem (Join-Path $DocRoot 'tutorial') -Filter *.rst.txt | Sort-Object Name | ForEach-Object { @{ Kind = 'prose'; Source = "python3.11-doc:tutorial/$($_.Name)"; Text = Get-RstText $_.FullName } }
    Get-ChildItem (Join-Path $DocRoot 'faq') -Filter *.rst.txt | Sort-Object Name | ForEach-Object { @{ Kind = 'dialogue'; Source = "python3.11-doc:faq/$($_.Name)"; Text = Get-RstText $_.FullName } }
    $codeModules | ForEach-Object { @{ Kind = 'code'; Source = "libpython3.11-minimal:$_.py"; Text = Get-Content (Join-Path $StdlibRoot "$_.py") -Raw } }
)

$index = 0
$lines = foreach ($doc in $sources) {
    foreach ($piece in Split-Document $doc.Text) {
        if ($piece.Trim().Length -lt 40) { continue }
        [ordered]@{ text = $piece; kind = $doc.Kind; source = $doc.Source; split = if ($index % 10 -eq 9) { 'heldout' } else { 'train' } } |
            ConvertTo-Json -Compress
        $index++
    }
}
[IO.File]::WriteAllLines($OutFile, [string[]]$lines, [Text.UTF8Encoding]::new($false))
Write-Host "$index documents, $((Get-Item $OutFile).Length) bytes -> $OutFile"
