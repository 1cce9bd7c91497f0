using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Cmdlets;

/// <summary>Tab completion of preset names for <c>-Preset</c>.</summary>
public sealed class PresetCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = wordToComplete.Trim('\'', '"');
        return Presets.Names
            .Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue,
                $"{n}: {Presets.Describe(n)}"));
    }
}
