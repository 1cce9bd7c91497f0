using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// A MIXED_PRECISION checkpoint's <c>quantized_layers</c> (hf_quant_config.json, ModelOpt
/// <c>process_layer_quant_config</c>): per module its <c>quant_algo</c> (FP8, NVFP4 or W4A16_NVFP4, the NVFP4 forms
/// with <c>group_size</c> 16). Every Linear no entry names is unquantized. An entry naming a fused experts container
/// (<c>…mlp.experts</c>, ModelOpt's QuantFusedExperts) covers the per-expert Linears the checkpoint splits it into,
/// <c>&lt;container&gt;.&lt;e&gt;.{gate_proj, up_proj, down_proj}</c>.
/// </summary>
internal sealed class QuantizedLayers
{
    private static readonly HashSet<string> ExpertProjections = ["gate_proj", "up_proj", "down_proj"];

    private readonly Dictionary<string, string> _algos;

    private QuantizedLayers(Dictionary<string, string> algos) => _algos = algos;

    /// <summary>Entry name → quant_algo, for the entries whose config is valid.</summary>
    public IReadOnlyDictionary<string, string> Algos => _algos;

    /// <summary>Reads the entries, failing <paramref name="check"/> for each one whose config is not a layer config ModelOpt writes.</summary>
    public static QuantizedLayers Read(JsonObject layers, CheckBuilder check)
    {
        var algos = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in layers)
        {
            string? algo = ModelConfig.GetString(node as JsonObject, "quant_algo");
            string? problem = algo switch
            {
                DeclaredQuantization.Fp8 => null,
                DeclaredQuantization.Nvfp4 or DeclaredQuantization.W4A16 =>
                    ModelConfig.GetInt(node as JsonObject, "group_size") == 16 ? null : "group_size must be 16 (NVFP4 blocks)",
                _ => $"quant_algo must be {DeclaredQuantization.Fp8}, {DeclaredQuantization.Nvfp4} or {DeclaredQuantization.W4A16}",
            };
            if (problem is null)
                algos[name] = algo!;
            else
                check.Fail(VerificationIds.QuantConfigInvalid, $"quantized_layers entry '{name}' is {node?.ToJsonString() ?? "null"}: {problem}.");
        }
        return new QuantizedLayers(algos);
    }

    /// <summary>The entry that declares <paramref name="module"/> quantized: its own name, or its fused experts container.</summary>
    public string? EntryFor(string module)
    {
        if (_algos.ContainsKey(module)) return module;
        if (ExpertSets.SplitExpert(module) is { } e && ExpertProjections.Contains(e.Projection) && _algos.ContainsKey(e.Experts))
            return e.Experts;
        return null;
    }

    /// <summary>The algorithm declared for <paramref name="module"/>, or null when it must be unquantized.</summary>
    public string? AlgoFor(string module) => EntryFor(module) is { } entry ? _algos[entry] : null;
}
