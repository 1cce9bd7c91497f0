using System.Text.RegularExpressions;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Quantization;

/// <summary>
/// The checks that make a half-applied recipe loud: siblings left unquantized while the rest of their kind is
/// quantized, experts of one container that differ, modules the recipe wanted but NVFP4 cannot hold, routers a
/// recipe tried to quantize.
/// </summary>
public static partial class PlanGuards
{
    private const int NamesShown = 6;

    [GeneratedRegex(@"(?<=(?:^|\.)(?:layers|experts)\.)\d+(?=\.)")]
    private static partial Regex IndexComponent();

    /// <summary>A module's sibling key: its name with layer and expert indices replaced by <c>*</c>.</summary>
    public static string SiblingKey(string moduleName) => IndexComponent().Replace(moduleName, "*");

    public static List<string> Check(IReadOnlyList<ModulePlan> modules)
    {
        var warnings = new List<string>();
        CheckSiblings(modules, warnings);
        foreach (var m in modules.Where(m => m.Decision == QuantDecision.Mixed))
        {
            var left = m.ExpertUnits.Where(u => !u.Decision.IsQuantized()).Select(u => $"{u.Projection}[{u.Expert}]").ToList();
            warnings.Add($"{m.Name}: {left.Count} of {m.ExpertUnits.Count} expert projections stay unquantized while their siblings are quantized: {Names(left)}");
        }
        foreach (var m in modules.Where(m => m.Decision == QuantDecision.Unquantizable))
            warnings.Add($"{m.Name} {m.Shape} cannot be NVFP4 (input dimension not a multiple of {QuantPlanner.BlockSize}); it stays unquantized and is listed in the exclusions");
        foreach (var m in modules.Where(m => m.Kind == ModuleKind.Router && m.Quantizers.Any(q => q.Quantizer.Role == QuantizerRole.Weight && q.Enabled)))
            warnings.Add($"{m.Name} is a router; the recipe enables it ({m.Quantizers[0].Explain()}) but routers stay unquantized");
        return warnings;
    }

    private static void CheckSiblings(IReadOnlyList<ModulePlan> modules, List<string> warnings)
    {
        var groups = modules.Where(m => m.Kind == ModuleKind.Linear || m.Kind == ModuleKind.FusedExperts)
            .GroupBy(m => (m.Section, Key: SiblingKey(m.Name)));
        foreach (var group in groups)
        {
            var quantized = group.Where(m => m.IsQuantized).ToList();
            var left = group.Where(m => m.Decision == QuantDecision.Unquantized).ToList();
            if (quantized.Count == 0 || left.Count == 0) continue;
            warnings.Add($"{left.Count} of {group.Count()} modules like '{group.Key.Key}' stay unquantized while {quantized.Count} are quantized: " +
                         $"{Names(left.Select(m => m.Name).ToList())} ({left[0].Reason})");
        }
    }

    private static string Names(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(NamesShown)) + (names.Count > NamesShown ? $" and {names.Count - NamesShown} more" : "");
}
