using System.Text.Json.Nodes;

namespace ModelOptPS.Fixtures;

/// <summary>
/// A dense Qwen3.5 checkpoint (<c>qwen3_5</c>: the hybrid stack with SwiGLU MLPs instead of MoE), which the fixture
/// generator does not make: derived from the Qwen3.5-MoE recipe by swapping every MoE block for a dense MLP.
/// </summary>
public static class DenseQwen3_5
{
    /// <summary>Its model_type, the name <see cref="ForwardFamilies"/> lists it under.</summary>
    public const string Family = "qwen3_5";

    public const int Intermediate = 96;

    public static CheckpointRecipe Recipe()
    {
        var moe = TinyCheckpoints.Create("qwen3_5_moe");
        var config = JsonNode.Parse(moe.Config.ToJsonString())!.AsObject();
        config["model_type"] = Family;
        var text = config["text_config"]!.AsObject();
        text["model_type"] = "qwen3_5_text";
        text["intermediate_size"] = Intermediate;
        foreach (var key in new[] { "num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size" }) text.Remove(key);

        var recipe = new CheckpointRecipe(Family, config);
        int hidden = (int)text["hidden_size"]!;
        foreach (var t in moe.Tensors.Where(t => !t.Name.Contains(".mlp.", StringComparison.Ordinal)))
            recipe.Add(t.Name, t.Shape, t.Fill, t.DType);
        foreach (var layer in moe.Tensors.Select(t => t.Name).Where(n => n.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)))
        {
            string mlp = layer[..^"gate.weight".Length];
            recipe.Add(mlp + "gate_proj.weight", [Intermediate, hidden]);
            recipe.Add(mlp + "up_proj.weight", [Intermediate, hidden]);
            recipe.Add(mlp + "down_proj.weight", [hidden, Intermediate]);
        }
        return recipe;
    }
}
