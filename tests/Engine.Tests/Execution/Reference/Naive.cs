namespace ModelOptPS.Engine.Tests.Execution.Reference;

/// <summary>
/// Plain-loop, double-precision implementations of every block the engine runs, written from the equations of
/// shared/reference/architectures.md §1 and §4 and checked line by line against transformers' modeling code
/// (models/qwen3_next/modeling_qwen3_next.py, models/qwen3_5_moe/modeling_qwen3_5_moe.py: RMSNorm variants,
/// apply_rotary_pos_emb, eager_attention_forward with repeat_kv, the top-k routers, the experts loop,
/// torch_recurrent_gated_delta_rule, RMSNormGated, fix_query_key_value_ordering). They share no code with the
/// engine: no torch, no engine types. Matrices are [rows][columns]; a Linear weight is [out][in].
/// </summary>
internal static class Naive
{
    public static double Silu(double x) => x / (1 + Math.Exp(-x));

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    public static double Softplus(double x) => x > 20 ? x : Math.Log(1 + Math.Exp(x));

    public static double[] Linear(double[] x, double[][] w, double[]? b = null)
    {
        var y = new double[w.Length];
        for (int o = 0; o < w.Length; o++)
        {
            double sum = b?[o] ?? 0;
            for (int i = 0; i < x.Length; i++) sum += w[o][i] * x[i];
            y[o] = sum;
        }
        return y;
    }

    public static double[][] Linear(double[][] x, double[][] w, double[]? b = null) => x.Select(row => Linear(row, w, b)).ToArray();

    public static double[] RmsNorm(double[] x, double[] w, double eps, bool offset)
    {
        double mean = x.Sum(v => v * v) / x.Length;
        double scale = 1 / Math.Sqrt(mean + eps);
        return x.Select((v, i) => v * scale * (offset ? 1 + w[i] : w[i])).ToArray();
    }

    public static double[][] RmsNorm(double[][] x, double[] w, double eps, bool offset) => x.Select(r => RmsNorm(r, w, eps, offset)).ToArray();

    /// <summary>RMSNorm of each head of a row laid out as heads × dim.</summary>
    public static double[] HeadNorm(double[] row, int dim, double[] w, double eps, bool offset)
    {
        var result = new double[row.Length];
        for (int h = 0; h < row.Length / dim; h++)
            RmsNorm(row[(h * dim)..((h + 1) * dim)], w, eps, offset).CopyTo(result, h * dim);
        return result;
    }

    /// <summary><c>1 / θ^(2i/d)</c> for the rotated dims.</summary>
    public static double[] InverseFrequencies(double theta, int rotaryDim) =>
        Enumerable.Range(0, rotaryDim / 2).Select(i => 1 / Math.Pow(theta, 2.0 * i / rotaryDim)).ToArray();

    /// <summary>Rotates the first 2·|inv| dims of every head of a row (heads × dim) for position <paramref name="pos"/>, NeoX halves.</summary>
    public static double[] Rope(double[] row, int dim, int pos, double[] inv)
    {
        var result = (double[])row.Clone();
        int half = inv.Length;
        for (int h = 0; h < row.Length / dim; h++)
        {
            int b = h * dim;
            for (int i = 0; i < half; i++)
            {
                double angle = pos * inv[i], c = Math.Cos(angle), s = Math.Sin(angle);
                double x1 = row[b + i], x2 = row[b + i + half];
                result[b + i] = x1 * c - x2 * s;
                result[b + i + half] = x2 * c + x1 * s;
            }
        }
        return result;
    }

    /// <summary>Causal softmax attention; q [T][heads·dim], k/v [T][kvHeads·dim]; query head h reads KV head h / (heads/kvHeads).</summary>
    public static double[][] Attention(double[][] q, double[][] k, double[][] v, int heads, int kvHeads, int dim, int? window = null)
    {
        int length = q.Length, groups = heads / kvHeads;
        var output = new double[length][];
        for (int t = 0; t < length; t++)
        {
            output[t] = new double[heads * dim];
            for (int h = 0; h < heads; h++)
            {
                int kv = h / groups;
                int first = window is { } w ? Math.Max(0, t - w + 1) : 0;
                var scores = new double[t + 1];
                double max = double.NegativeInfinity;
                for (int j = first; j <= t; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < dim; d++) dot += q[t][h * dim + d] * k[j][kv * dim + d];
                    scores[j] = dot / Math.Sqrt(dim);
                    max = Math.Max(max, scores[j]);
                }
                double total = 0;
                for (int j = first; j <= t; j++) total += scores[j] = Math.Exp(scores[j] - max);
                for (int j = first; j <= t; j++)
                    for (int d = 0; d < dim; d++) output[t][h * dim + d] += scores[j] / total * v[j][kv * dim + d];
            }
        }
        return output;
    }

    public static double[] SwiGlu(double[] x, double[][] gate, double[][] up, double[][] down)
    {
        double[] g = Linear(x, gate), u = Linear(x, up);
        return Linear(g.Select((v, i) => Silu(v) * u[i]).ToArray(), down);
    }

    /// <summary>Softmax over all experts, the k largest (ties to the lower index), optionally renormalised.</summary>
    public static (double[] Weights, int[] Experts) Route(double[] logits, int k, bool renormalize)
    {
        double max = logits.Max();
        double[] p = logits.Select(l => Math.Exp(l - max)).ToArray();
        double total = p.Sum();
        int[] top = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ThenBy(i => i).Take(k).ToArray();
        double[] w = top.Select(i => p[i] / total).ToArray();
        if (renormalize)
        {
            double sum = w.Sum();
            w = w.Select(x => x / sum).ToArray();
        }
        return (w, top);
    }

    /// <summary>The smallest gap between the k-th and (k+1)-th probability over all tokens: how safe the top-k choice is.</summary>
    public static double RoutingMargin(double[] logits, int k)
    {
        double max = logits.Max();
        double[] p = logits.Select(l => Math.Exp(l - max)).OrderByDescending(x => x).ToArray();
        double total = p.Sum();
        return k < p.Length ? (p[k - 1] - p[k]) / total : double.PositiveInfinity;
    }

    /// <summary>One token through routed experts (a per-token loop), plus a shared expert behind a sigmoid gate.</summary>
    public static double[] Moe(double[] x, Moe m)
    {
        var (w, experts) = Route(Linear(x, m.Router), m.TopK, m.Renormalize);
        var y = new double[x.Length];
        for (int j = 0; j < experts.Length; j++)
        {
            double[] e = SwiGlu(x, m.Gate[experts[j]], m.Up[experts[j]], m.Down[experts[j]]);
            for (int i = 0; i < y.Length; i++) y[i] += w[j] * e[i];
        }
        if (m.Shared is { } shared)
        {
            double gate = Sigmoid(Linear(x, m.SharedGate!)[0]);
            double[] s = SwiGlu(x, shared.Gate, shared.Up, shared.Down);
            for (int i = 0; i < y.Length; i++) y[i] += gate * s[i];
        }
        return y;
    }

    /// <summary>Depthwise causal conv with zero left padding, then SiLU; x [T][C], w [C][K].</summary>
    public static double[][] CausalConvSilu(double[][] x, double[][] w)
    {
        int length = x.Length, channels = w.Length, kernel = w[0].Length;
        var y = new double[length][];
        for (int t = 0; t < length; t++)
        {
            y[t] = new double[channels];
            for (int c = 0; c < channels; c++)
            {
                double sum = 0;
                for (int j = 0; j < kernel; j++)
                {
                    int source = t - (kernel - 1) + j;
                    if (source >= 0) sum += w[c][j] * x[source][c];
                }
                y[t][c] = Silu(sum);
            }
        }
        return y;
    }

    /// <summary>
    /// The gated delta rule, one token and one value head at a time: q, k [T][nv][dk] (per value head), v [T][nv][dv],
    /// g, beta [T][nv]; q and k are L2-normalised (eps 1e-6 inside the root), q scaled by dk^-0.5.
    /// </summary>
    public static double[][][] DeltaRule(double[][][] q, double[][][] k, double[][][] v, double[][] g, double[][] beta)
    {
        int length = q.Length, heads = q[0].Length, dk = q[0][0].Length, dv = v[0][0].Length;
        var output = new double[length][][];
        var states = new double[heads][,];
        for (int h = 0; h < heads; h++) states[h] = new double[dk, dv];
        for (int t = 0; t < length; t++)
        {
            output[t] = new double[heads][];
            for (int h = 0; h < heads; h++)
            {
                var s = states[h];
                double[] kh = L2(k[t][h]), qh = L2(q[t][h]).Select(x => x / Math.Sqrt(dk)).ToArray();
                double decay = Math.Exp(g[t][h]);
                for (int a = 0; a < dk; a++)
                    for (int b = 0; b < dv; b++) s[a, b] *= decay;
                for (int b = 0; b < dv; b++)
                {
                    double memory = 0;
                    for (int a = 0; a < dk; a++) memory += s[a, b] * kh[a];
                    double delta = beta[t][h] * (v[t][h][b] - memory);
                    for (int a = 0; a < dk; a++) s[a, b] += kh[a] * delta;
                }
                output[t][h] = new double[dv];
                for (int b = 0; b < dv; b++)
                    for (int a = 0; a < dk; a++) output[t][h][b] += s[a, b] * qh[a];
            }
        }
        return output;
    }

    private static double[] L2(double[] x)
    {
        double norm = Math.Sqrt(x.Sum(v => v * v) + 1e-6);
        return x.Select(v => v / norm).ToArray();
    }

    /// <summary>Gated RMSNorm of one head: <c>w · rmsnorm(o) · silu(z)</c> (plain weight).</summary>
    public static double[] GatedNorm(double[] o, double[] z, double[] w, double eps) =>
        RmsNorm(o, w, eps, offset: false).Select((v, i) => v * Silu(z[i])).ToArray();
}

/// <summary>An MoE block's weights for <see cref="Naive.Moe"/>: per-expert gate/up [I][H] and down [H][I].</summary>
internal sealed record Moe(double[][] Router, double[][][] Gate, double[][][] Up, double[][][] Down, int TopK, bool Renormalize,
    (double[][] Gate, double[][] Up, double[][] Down)? Shared = null, double[][]? SharedGate = null);
