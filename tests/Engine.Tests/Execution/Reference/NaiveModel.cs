using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Tests.Execution.Reference;

/// <summary>
/// A whole generated checkpoint run in plain double-precision loops, to produce the reference logits of the end-to-end
/// tests. Written independently of the engine: the family's structure comes from its model_type and config the way
/// transformers builds the model (layer_types / full_attention_interval, mlp_only_layers / decoder_sparse_step,
/// norm_topk_prob, which families have q/k norms, biases, output gates, offset norms), not from tensor presence as in
/// the engine; the arithmetic is <see cref="Naive"/>'s.
/// </summary>
internal sealed class NaiveModel
{
    private static readonly string[] Hybrid = ["qwen3_next", "qwen3_5_moe", "qwen3_5"];
    private static readonly string[] QkNorm = ["qwen3", "qwen3_moe", "qwen3_next", "qwen3_5_moe", "qwen3_5"];

    private readonly NaiveCheckpoint _w;
    private readonly JsonObject _c;
    private readonly string _family, _prefix;
    private readonly int _hidden, _heads, _kvHeads, _headDim;
    private readonly double _eps;
    private readonly bool _offset;
    private readonly double[] _inv;

    public NaiveModel(CheckpointReader reader)
    {
        _w = new NaiveCheckpoint(reader);
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(reader.Folder, "config.json")))!.AsObject();
        _family = (string)root["model_type"]!;
        _c = root["text_config"] as JsonObject ?? root;
        _prefix = _family.StartsWith("qwen3_5", StringComparison.Ordinal) ? "model.language_model." : "model.";
        _hidden = Int("hidden_size");
        _heads = Int("num_attention_heads");
        _kvHeads = Int("num_key_value_heads");
        _headDim = _c["head_dim"] is { } hd ? (int)hd : _hidden / _heads;
        _eps = (double)_c["rms_norm_eps"]!;
        _offset = Hybrid.Contains(_family);
        var rope = _c["rope_parameters"] as JsonObject;
        double theta = (double?)rope?["rope_theta"] ?? (double)_c["rope_theta"]!;
        double partial = (double?)rope?["partial_rotary_factor"] ?? (double?)_c["partial_rotary_factor"] ?? 1.0;
        _inv = Naive.InverseFrequencies(theta, (int)(_headDim * partial));
    }

    /// <summary>Shown, per softmax-attention block (e.g. <c>model.layers.0.self_attn</c>), the keys and values it caches.</summary>
    public Action<string, double[][], double[][]>? OnCache { get; init; }

    /// <summary>The smallest top-k routing margin seen in the last <see cref="Logits"/> call (see the end-to-end test).</summary>
    public double SmallestRoutingMargin { get; private set; } = double.PositiveInfinity;

    private int Int(string key) => (int)_c[key]!;

    public double[][] Logits(long[] tokens)
    {
        double[][] embed = _w.Matrix(_prefix + "embed_tokens.weight");
        double[][] h = tokens.Select(t => (double[])embed[t].Clone()).ToArray();
        for (int layer = 0; layer < Int("num_hidden_layers"); layer++)
        {
            string p = $"{_prefix}layers.{layer}.";
            double[][] n = Naive.RmsNorm(h, _w.Flat(p + "input_layernorm.weight"), _eps, _offset);
            double[][] mixed = IsLinearAttention(layer) ? DeltaNet(n, p + "linear_attn.") : Attention(n, p + "self_attn.");
            Add(h, mixed);
            double[][] n2 = Naive.RmsNorm(h, _w.Flat(p + "post_attention_layernorm.weight"), _eps, _offset);
            Add(h, IsMoe(layer) ? MoeLayer(n2, p) : n2.Select(x => Naive.SwiGlu(x, _w.Matrix(p + "mlp.gate_proj.weight"),
                _w.Matrix(p + "mlp.up_proj.weight"), _w.Matrix(p + "mlp.down_proj.weight"))).ToArray());
        }
        double[][] final = Naive.RmsNorm(h, _w.Flat(_prefix + "norm.weight"), _eps, _offset);
        string head = _w.Has("lm_head.weight") ? "lm_head.weight" : _prefix + "embed_tokens.weight";
        return Naive.Linear(final, _w.Matrix(head));
    }

    private static void Add(double[][] h, double[][] y)
    {
        for (int t = 0; t < h.Length; t++)
            for (int i = 0; i < h[t].Length; i++) h[t][i] += y[t][i];
    }

    private bool IsLinearAttention(int layer)
    {
        if (!Hybrid.Contains(_family)) return false;
        if (_c["layer_types"] is JsonArray types) return (string)types[layer]! == "linear_attention";
        return (layer + 1) % Int("full_attention_interval") != 0;
    }

    private bool IsMoe(int layer) => _family switch
    {
        "mixtral" or "qwen3_5_moe" => true,
        "qwen3_moe" or "qwen3_next" => Int("num_experts") > 0
            && !(_c["mlp_only_layers"] as JsonArray ?? []).Select(n => (int)n!).Contains(layer)
            && (layer + 1) % Int("decoder_sparse_step") == 0,
        _ => false,
    };

    private double[][] Attention(double[][] x, string p)
    {
        double[]? Bias(string name) => _family == "qwen2" ? _w.Flat(p + name + ".bias") : null;
        bool qkNorm = QkNorm.Contains(_family);
        return NaiveLayers.Attention(x, new NaiveAttention(
            _w.Matrix(p + "q_proj.weight"), _w.Matrix(p + "k_proj.weight"), _w.Matrix(p + "v_proj.weight"), _w.Matrix(p + "o_proj.weight"),
            _heads, _kvHeads, _headDim, _inv, _eps, Gated: Hybrid.Contains(_family), Offset: _offset,
            QNorm: qkNorm ? _w.Flat(p + "q_norm.weight") : null, KNorm: qkNorm ? _w.Flat(p + "k_norm.weight") : null,
            QBias: Bias("q_proj"), KBias: Bias("k_proj"), VBias: Bias("v_proj")),
            OnCache is null ? null : (k, v) => OnCache(p[..^1], k, v));
    }

    private double[][] MoeLayer(double[][] x, string p)
    {
        string block = _family == "mixtral" ? p + "block_sparse_moe." : p + "mlp.";
        double[][] router = _w.Matrix(block + "gate.weight");
        int experts = router.Length;
        double[][][] gate, up, down;
        if (_w.Has(block + "experts.gate_up_proj"))
        {
            double[][][] gateUp = _w.Stack(block + "experts.gate_up_proj");
            int inter = gateUp[0].Length / 2;
            gate = gateUp.Select(m => m[..inter]).ToArray();
            up = gateUp.Select(m => m[inter..]).ToArray();
            down = _w.Stack(block + "experts.down_proj");
        }
        else
        {
            var (g, u, dn) = _family == "mixtral" ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj");
            gate = Enumerable.Range(0, experts).Select(e => _w.Matrix($"{block}experts.{e}.{g}.weight")).ToArray();
            up = Enumerable.Range(0, experts).Select(e => _w.Matrix($"{block}experts.{e}.{u}.weight")).ToArray();
            down = Enumerable.Range(0, experts).Select(e => _w.Matrix($"{block}experts.{e}.{dn}.weight")).ToArray();
        }
        bool renormalize = _family is "mixtral" or "qwen3_5_moe" || ((bool?)_c["norm_topk_prob"] ?? false);
        int topK = Int("num_experts_per_tok");
        var moe = new Moe(router, gate, up, down, topK, renormalize);
        if (Hybrid.Contains(_family))
        {
            string s = block + "shared_expert.";
            moe = moe with
            {
                Shared = (_w.Matrix(s + "gate_proj.weight"), _w.Matrix(s + "up_proj.weight"), _w.Matrix(s + "down_proj.weight")),
                SharedGate = _w.Matrix(block + "shared_expert_gate.weight"),
            };
        }
        foreach (var row in x)
            SmallestRoutingMargin = Math.Min(SmallestRoutingMargin, Naive.RoutingMargin(Naive.Linear(row, router), topK));
        return x.Select(row => Naive.Moe(row, moe)).ToArray();
    }

    private double[][] DeltaNet(double[][] x, string p)
    {
        long[] conv = _w.Shape(p + "conv1d.weight");
        var n = new NaiveDeltaNet(
            Int("linear_num_key_heads"), Int("linear_num_value_heads"), Int("linear_key_head_dim"), Int("linear_value_head_dim"),
            NaiveCheckpoint.Rows(_w.Flat(p + "conv1d.weight"), (int)conv[0], (int)conv[2]),
            _w.Flat(p + "A_log"), _w.Flat(p + "dt_bias"), _w.Flat(p + "norm.weight"), _w.Matrix(p + "out_proj.weight"), _eps);
        n = _family == "qwen3_next"
            ? n with { Qkvz = _w.Matrix(p + "in_proj_qkvz.weight"), Ba = _w.Matrix(p + "in_proj_ba.weight") }
            : n with
            {
                Qkv = _w.Matrix(p + "in_proj_qkv.weight"), Z = _w.Matrix(p + "in_proj_z.weight"),
                B = _w.Matrix(p + "in_proj_b.weight"), A = _w.Matrix(p + "in_proj_a.weight"),
            };
        return NaiveLayers.DeltaNet(x, n);
    }
}
