using System.Text.Json.Nodes;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// One entry of ModelOpt's per-layer quantization config (quant_utils.py <c>process_layer_quant_config</c>): FP8 is
/// <c>{"quant_algo": "FP8"}</c>; the NVFP4 forms carry their block size, <c>{"quant_algo": "NVFP4", "group_size": 16}</c>.
/// </summary>
public sealed record QuantizedLayer(string Name, string QuantAlgo)
{
    public int? GroupSize => GroupSizeOf(QuantAlgo);

    /// <summary>The block size of the NVFP4 forms; FP8 per tensor has none.</summary>
    public static int? GroupSizeOf(string quantAlgo) => quantAlgo == "FP8" ? null : Nvfp4.BlockSize;

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["quant_algo"] = QuantAlgo };
        if (GroupSize is { } g) o["group_size"] = g;
        return o;
    }
}

/// <summary>
/// The quantized modules of a plan as ModelOpt's <c>get_quant_config</c> lists them: one entry per quantized Linear, and
/// one for a fused experts container (<c>…mlp.experts</c>, ModelOpt's QuantFusedExperts module, although its experts
/// are written per expert); experts stored as separate Linears each get their own entry. Fused experts copied unchanged
/// (MTP, vision) are not quantized. Order: ModelOpt walks <c>named_modules()</c>, where a causal LM registers lm_head
/// after the decoder, so lm_head comes last (this decides which config group is <c>group_0</c>); within a layer the
/// model's module order is alphabetical, where ModelOpt follows each class's attribute order (Qwen3.5's out_proj
/// before in_proj_qkv): the same entries, keys in another order.
/// </summary>
public static class QuantizedLayers
{
    public static IReadOnlyList<QuantizedLayer> Of(QuantPlan plan)
    {
        var layers = new List<QuantizedLayer>();
        foreach (var mp in plan.Modules.OrderBy(m => m.Name == "lm_head" ? 1 : 0))
        {
            switch (mp.Kind)
            {
                case ModuleKind.Linear or ModuleKind.Router when mp.Decision.IsQuantized():
                    layers.Add(new QuantizedLayer(mp.Name, mp.Decision.QuantAlgo()!));
                    break;
                case ModuleKind.FusedExperts when WeightUnits.IsSplit(mp.Module)
                    && mp.ExpertUnits.FirstOrDefault(u => u.Decision.IsQuantized()) is { } unit:
                    // The planner refuses containers whose experts mix formats (FusedExpertsFormatsMixed).
                    layers.Add(new QuantizedLayer(mp.Name, unit.Decision.QuantAlgo()!));
                    break;
            }
        }
        return layers;
    }
}
