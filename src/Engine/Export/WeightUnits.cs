using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// Turns a planned model into the weights the export writes. Fused experts of the language model are split per
/// expert (gate = rows [0, I) of <c>gate_up_proj[e]</c>, up = rows [I, 2I), down = <c>down_proj[e]</c>), quantized or
/// not, as ModelOpt does; fused experts under <c>mtp.</c> and the vision tower are copied unchanged.
/// </summary>
public static class WeightUnits
{
    public static IReadOnlyList<WeightUnit> From(HFModel model, QuantPlan plan)
    {
        var units = new List<WeightUnit>();
        foreach (var mp in plan.Modules)
        {
            var m = mp.Module;
            switch (m.Kind)
            {
                case ModuleKind.Linear:
                case ModuleKind.Router:
                    var w = model.Checkpoint.GetTensor(m.Parameters["weight"].Name);
                    units.Add(new WeightUnit(m.Name, m, w, 0, (int)w.Info.Shape[0], (int)w.Info.Shape[1],
                        mp.Decision, m.Role, m.Expert, $"{m.Name}.input_quantizer"));
                    break;
                case ModuleKind.FusedExperts when IsSplit(m):
                    units.AddRange(SplitFused(model, mp));
                    break;
            }
        }
        return units;
    }

    /// <summary>True for fused experts that are written per expert (the language model's), false for copied ones.</summary>
    public static bool IsSplit(ModelModule module) => module.Kind == ModuleKind.FusedExperts && module.Section == ModelSection.Text;

    private static IEnumerable<WeightUnit> SplitFused(HFModel model, ModulePlan mp)
    {
        var m = mp.Module;
        var gateUp = model.Checkpoint.GetTensor(m.Parameters["gate_up_proj"].Name);
        var down = model.Checkpoint.GetTensor(m.Parameters["down_proj"].Name);
        int experts = (int)gateUp.Info.Shape[0], twoI = (int)gateUp.Info.Shape[1], hidden = (int)gateUp.Info.Shape[2];
        int intermediate = twoI / 2, downRows = (int)down.Info.Shape[1], downCols = (int)down.Info.Shape[2];
        int size = DTypes.SizeOf(gateUp.Info.DType);
        for (int e = 0; e < experts; e++)
        {
            var gateUpDecision = Decision(mp, e, "gate_up_proj");
            long expertOffset = (long)e * twoI * hidden * size;
            string p = $"{m.Name}.{e}";
            yield return new WeightUnit($"{p}.gate_proj", m, gateUp, expertOffset, intermediate, hidden, gateUpDecision, "gate_proj", e,
                $"{m.Name}.gate_up_proj_input_quantizer");
            yield return new WeightUnit($"{p}.up_proj", m, gateUp, expertOffset + (long)intermediate * hidden * size, intermediate, hidden,
                gateUpDecision, "up_proj", e, $"{m.Name}.gate_up_proj_input_quantizer");
            yield return new WeightUnit($"{p}.down_proj", m, down, (long)e * downRows * downCols * DTypes.SizeOf(down.Info.DType),
                downRows, downCols, Decision(mp, e, "down_proj"), "down_proj", e, $"{m.Name}.down_proj_input_quantizer");
        }
    }

    private static QuantDecision Decision(ModulePlan mp, int expert, string projection) =>
        mp.ExpertUnits.FirstOrDefault(u => u.Expert == expert && u.Projection == projection)?.Decision ?? QuantDecision.Unquantized;
}
