namespace ModelOptPS.Engine.Tests.Execution.Reference;

/// <summary>Weights and geometry of a softmax-attention layer for <see cref="NaiveLayers.Attention"/>.</summary>
internal sealed record NaiveAttention(
    double[][] Q, double[][] K, double[][] V, double[][] O, int Heads, int KvHeads, int HeadDim, double[] InverseFrequencies,
    double Eps = 1e-6, bool Gated = false, bool Offset = false, double[]? QNorm = null, double[]? KNorm = null,
    double[]? QBias = null, double[]? KBias = null, double[]? VBias = null, int? Window = null);

/// <summary>
/// Weights and geometry of a Gated DeltaNet layer for <see cref="NaiveLayers.DeltaNet"/>: Qwen3-Next's grouped
/// <see cref="Qkvz"/>/<see cref="Ba"/>, or Qwen3.5's split <see cref="Qkv"/>/<see cref="Z"/>/<see cref="B"/>/<see cref="A"/>.
/// Conv is [C][K].
/// </summary>
internal sealed record NaiveDeltaNet(
    int KeyHeads, int ValueHeads, int KeyDim, int ValueDim, double[][] Conv, double[] ALog, double[] DtBias, double[] Norm,
    double[][] Out, double Eps, double[][]? Qkvz = null, double[][]? Ba = null, double[][]? Qkv = null, double[][]? Z = null,
    double[][]? B = null, double[][]? A = null);

/// <summary>Whole mixer layers in plain loops, from <see cref="Naive"/>'s primitives (same sources as there).</summary>
internal static class NaiveLayers
{
    /// <param name="cached">Shown the keys (after norm and RoPE) and values [T][kvHeads·dim], as a KV cache holds them.</param>
    public static double[][] Attention(double[][] x, NaiveAttention a, Action<double[][], double[][]>? cached = null)
    {
        int d = a.HeadDim;
        double[][] qg = Naive.Linear(x, a.Q, a.QBias);
        double[][] k = Naive.Linear(x, a.K, a.KBias);
        double[][] v = Naive.Linear(x, a.V, a.VBias);
        // Gated: per head the q_proj rows are [query (d) | gate (d)].
        double[][] q = a.Gated ? qg.Select(r => Enumerable.Range(0, a.Heads).SelectMany(h => r[(2 * h * d)..(2 * h * d + d)]).ToArray()).ToArray() : qg;
        double[][]? gate = a.Gated ? qg.Select(r => Enumerable.Range(0, a.Heads).SelectMany(h => r[(2 * h * d + d)..(2 * h * d + 2 * d)]).ToArray()).ToArray() : null;
        if (a.QNorm is not null) q = q.Select(r => Naive.HeadNorm(r, d, a.QNorm, a.Eps, a.Offset)).ToArray();
        if (a.KNorm is not null) k = k.Select(r => Naive.HeadNorm(r, d, a.KNorm, a.Eps, a.Offset)).ToArray();
        q = q.Select((r, t) => Naive.Rope(r, d, t, a.InverseFrequencies)).ToArray();
        k = k.Select((r, t) => Naive.Rope(r, d, t, a.InverseFrequencies)).ToArray();
        cached?.Invoke(k, v);
        double[][] o = Naive.Attention(q, k, v, a.Heads, a.KvHeads, d, a.Window);
        if (gate is not null) o = o.Select((r, t) => r.Select((val, i) => val * Naive.Sigmoid(gate[t][i])).ToArray()).ToArray();
        return Naive.Linear(o, a.O);
    }

    public static double[][] DeltaNet(double[][] x, NaiveDeltaNet n)
    {
        int nk = n.KeyHeads, nv = n.ValueHeads, dk = n.KeyDim, dv = n.ValueDim, r = nv / nk, length = x.Length;
        var qkv = new double[length][];
        var z = new double[length][];
        var b = new double[length][];
        var a = new double[length][];
        for (int t = 0; t < length; t++)
        {
            if (n.Qkvz is not null)
            {
                // Grouped per key head g: [q_g (dk) | k_g (dk) | v_g (r·dv) | z_g (r·dv)], and [b_g (r) | a_g (r)].
                double[] all = Naive.Linear(x[t], n.Qkvz), ba = Naive.Linear(x[t], n.Ba!);
                int group = 2 * dk + 2 * r * dv;
                var q = new List<double>(); var k = new List<double>(); var v = new List<double>(); var zz = new List<double>();
                var bb = new List<double>(); var aa = new List<double>();
                for (int g = 0; g < nk; g++)
                {
                    int at = g * group;
                    q.AddRange(all[at..(at + dk)]);
                    k.AddRange(all[(at + dk)..(at + 2 * dk)]);
                    v.AddRange(all[(at + 2 * dk)..(at + 2 * dk + r * dv)]);
                    zz.AddRange(all[(at + 2 * dk + r * dv)..(at + group)]);
                    bb.AddRange(ba[(g * 2 * r)..(g * 2 * r + r)]);
                    aa.AddRange(ba[(g * 2 * r + r)..(g * 2 * r + 2 * r)]);
                }
                qkv[t] = [.. q, .. k, .. v];
                (z[t], b[t], a[t]) = (zz.ToArray(), bb.ToArray(), aa.ToArray());
            }
            else
            {
                qkv[t] = Naive.Linear(x[t], n.Qkv!);
                z[t] = Naive.Linear(x[t], n.Z!);
                b[t] = Naive.Linear(x[t], n.B!);
                a[t] = Naive.Linear(x[t], n.A!);
            }
        }
        double[][] conv = Naive.CausalConvSilu(qkv, n.Conv);

        // Value head j reads key head j / r.
        double[][][] qh = conv.Select(c => Enumerable.Range(0, nv).Select(j => c[(j / r * dk)..(j / r * dk + dk)]).ToArray()).ToArray();
        double[][][] kh = conv.Select(c => Enumerable.Range(0, nv).Select(j => c[(nk * dk + j / r * dk)..(nk * dk + j / r * dk + dk)]).ToArray()).ToArray();
        double[][][] vh = conv.Select(c => Enumerable.Range(0, nv).Select(j => c[(2 * nk * dk + j * dv)..(2 * nk * dk + (j + 1) * dv)]).ToArray()).ToArray();
        double[][] beta = b.Select(row => row.Select(Naive.Sigmoid).ToArray()).ToArray();
        double[][] decay = a.Select(row => row.Select((v, j) => -Math.Exp(n.ALog[j]) * Naive.Softplus(v + n.DtBias[j])).ToArray()).ToArray();
        double[][][] o = Naive.DeltaRule(qh, kh, vh, decay, beta);
        double[][] y = o.Select((heads, t) => Enumerable.Range(0, nv)
            .SelectMany(j => Naive.GatedNorm(heads[j], z[t][(j * dv)..((j + 1) * dv)], n.Norm, n.Eps)).ToArray()).ToArray();
        return Naive.Linear(y, n.Out);
    }
}
