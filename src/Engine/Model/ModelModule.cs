using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Model;

/// <summary>
/// One module of the checkpoint, found from its tensor names: its parameters (name within the module to header
/// entry), its kind, and where it sits (section, layer, expert). Plain data, safe to pipe and filter.
/// </summary>
public sealed class ModelModule
{
    public ModelModule(string name, ModuleKind kind, ModelSection section, int? layer, int? expert, string role,
        IReadOnlyDictionary<string, TensorInfo> parameters)
    {
        Name = name;
        Kind = kind;
        Section = section;
        Layer = layer;
        Expert = expert;
        Role = role;
        Parameters = parameters;
    }

    /// <summary>Dotted module path, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Name { get; }

    public ModuleKind Kind { get; }

    public ModelSection Section { get; }

    /// <summary>Decoder layer index (<c>layers.N</c>), also inside <c>mtp.</c>; null outside layers.</summary>
    public int? Layer { get; }

    /// <summary>Expert index for per-expert Linears (<c>experts.N.*</c>); null otherwise.</summary>
    public int? Expert { get; }

    /// <summary>
    /// The module's job under a common name: its last name component, with Mixtral's expert names mapped to the
    /// usual ones (<c>w1</c> = gate_proj, <c>w3</c> = up_proj, <c>w2</c> = down_proj). Scale sharing keys on it.
    /// </summary>
    public string Role { get; }

    /// <summary>Parameter name within the module (<c>weight</c>, <c>bias</c>, <c>gate_up_proj</c>…) to its tensor.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Parameters { get; }

    /// <summary>The main tensor: <c>weight</c>, or <c>gate_up_proj</c> for fused experts, else the first parameter.</summary>
    public TensorInfo Primary =>
        Parameters.TryGetValue("weight", out var w) ? w
        : Parameters.TryGetValue("gate_up_proj", out var gu) ? gu
        : Parameters.Values.First();

    public long[] Shape => Primary.Shape;

    public DType DType => Primary.DType;

    /// <summary>Input features of a Linear (last dim), or hidden size of fused experts.</summary>
    public long? InFeatures => Kind is ModuleKind.Linear or ModuleKind.Router or ModuleKind.FusedExperts ? Primary.Shape[^1] : null;

    /// <summary>Output features of a Linear (first dim).</summary>
    public long? OutFeatures => Kind is ModuleKind.Linear or ModuleKind.Router ? Primary.Shape[0] : null;

    /// <summary>Number of experts in a fused experts container.</summary>
    public long? ExpertCount => Kind == ModuleKind.FusedExperts ? Primary.Shape[0] : null;

    public long ParameterCount => Parameters.Values.Sum(t => t.ElementCount);

    public long ByteLength => Parameters.Values.Sum(t => t.ByteLength);

    public string ShapeText => Primary.ShapeText;

    public override string ToString() => Name;
}
