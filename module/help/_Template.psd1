# Help source for one cmdlet: copy this file to module/help/<Verb-Noun>.psd1 (the cmdlet's exact name) and fill it in.
#
# build/New-ModuleHelp.ps1 (run by build.ps1 after the module is staged) turns every such file into
# out/ModelOptPS/en-US/ModelOptPS.dll-Help.xml, the help Get-Help shows. Write only prose here: the parameter types,
# parameter sets, Mandatory, Position, pipeline input, aliases, [SupportsWildcards], defaults and [OutputType] are read
# from the compiled cmdlet itself. The build FAILS, listing every problem, when
#   - an exported cmdlet has no help file, or a help file names no exported cmdlet;
#   - Synopsis or Description is empty, the Synopsis is longer than one line of 75 characters, or a key is not one of
#     those below;
#   - a parameter has no description, or a described parameter does not exist
#     (WhatIf and Confirm get the standard text unless described here; common parameters are never described);
#   - Inputs lacks a type the cmdlet takes from the pipeline by value, or names one it cannot take;
#   - Outputs is not exactly the cmdlet's [OutputType] types (full names);
#   - there are fewer than two Examples, or an example does not parse, does not call the cmdlet, or passes a parameter
#     that a ModelOptPS cmdlet does not have (write full parameter names, not abbreviations).
#
# Text: blank lines separate paragraphs; a line starting with '- ' starts a list item; other line breaks are just
# wrapping (keep lines under 120 characters).
#
# Examples must RUN as written (a test runs each one): each runs in a fresh, empty working folder that holds a
# Hugging Face checkpoint at ./ckpt (the shipped sample model, a Qwen3-MoE); write outputs under ./ (./out, ./out-*),
# and do not depend on another example. Where you need to show a result, end with an expression that returns it.
# Inside a @'...'@ string, use @"..."@ for a here-string in the example code.
@{
    # One sentence of at most 75 characters, ending with a full stop: what the cmdlet does. Shown by Get-Help and in
    # about_ModelOptPS.
    Synopsis     = 'Does one thing to a model.'

    # What it does, what it needs, what it guarantees; paragraphs.
    Description  = @'
Verb-Noun ...
'@

    # One entry per parameter (not the common parameters), in any order: either the description text, or
    # @{ Description = '...'; Default = '...' } to show a default that the cmdlet's property value does not say well.
    Parameters   = @{
        InputObject = 'The model from Set-QuantConfig.'
        Path        = @{ Description = 'The output folder.'; Default = './out' }
    }

    # Keyed by the full type name of each pipeline (ByValue) parameter; other types (e.g. System.IO.DirectoryInfo)
    # only when a parameter binds ByPropertyName. Leave empty (@{}) when nothing can be piped; the help then says None.
    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model from Import-HFModel.'
    }

    # Keyed by the full name of every [OutputType] of the cmdlet; empty when it declares none.
    Outputs      = @{
        'ModelOptPS.Engine.Model.HFModel' = 'The same model, with ... attached.'
    }

    # At least two. Title: a short phrase. Code: runnable PowerShell. Remarks: what it shows or why.
    Examples     = @(
        @{
            Title   = 'The usual case'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 | Verb-Noun
'@
            Remarks = 'What the example does and what it shows.'
        }
        @{
            Title   = 'A second, different use'
            Code    = @'
$model = Import-HFModel ./ckpt
Verb-Noun -InputObject $model
'@
            Remarks = '...'
        }
    )

    # Optional: the error ids the cmdlet writes (terminating or not), and anything else a user should know.
    Notes        = @'
Error ids: SomethingWrong, OtherThingWrong.
'@

    # Optional: related cmdlets, about topics, or URLs.
    RelatedLinks = @('Import-HFModel', 'about_ModelOptPS')
}
