using ModelOptPS.Engine.Torch;
using ModelOptPS.Engine.Checkpoint;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Rotary position embedding in the NeoX "halves" layout (architectures.md §1.3): the first <see cref="RotaryDim"/>
/// dims of each head are rotated, the rest pass through (partial rotary). Frequencies follow the config's rope type:
/// default, linear, or llama3. Qwen3.5's interleaved MRoPE equals plain RoPE for text-only input (all three position
/// ids are the token index), so it runs as default.
/// </summary>
internal sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;

    public RotaryEmbedding(float[] inverseFrequencies, double attentionScaling = 1.0)
    {
        _inverseFrequencies = inverseFrequencies;
        AttentionScaling = attentionScaling;
    }

    /// <summary>Rotated dims per head (2 × frequencies).</summary>
    public int RotaryDim => 2 * _inverseFrequencies.Length;

    public double AttentionScaling { get; }

    public IReadOnlyList<float> InverseFrequencies => _inverseFrequencies;

    /// <summary>Builds the embedding a config describes, or throws ForwardNotSupported for rope types it does not know.</summary>
    public static RotaryEmbedding FromConfig(ModelConfig config, int headDim)
    {
        int dim = (int)(headDim * config.PartialRotaryFactor);
        double theta = config.RopeTheta ?? 10000.0;
        var inv = new double[dim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / dim);

        var rope = config.RopeParameters;
        string type = ModelConfig.GetString(rope, "rope_type") ?? ModelConfig.GetString(rope, "type") ?? "default";
        switch (type)
        {
            case "default":
                break;
            case "linear":
                double linear = ModelConfig.GetDouble(rope, "factor") ?? 1.0;
                for (int i = 0; i < inv.Length; i++) inv[i] /= linear;
                break;
            case "llama3":
                Llama3Scale(inv, rope!);
                break;
            default:
                throw ExecutionErrors.NotSupported(Path.GetDirectoryName(config.Path) ?? config.Path,
                    $"rope type '{type}' is not implemented (default, linear and llama3 are).");
        }
        return new RotaryEmbedding(inv.Select(v => (float)v).ToArray());
    }

    /// <summary>Llama 3.x: long wavelengths divided by the factor, short kept, the band between interpolated.</summary>
    private static void Llama3Scale(double[] inv, System.Text.Json.Nodes.JsonObject rope)
    {
        double factor = ModelConfig.GetDouble(rope, "factor") ?? 8.0;
        double low = ModelConfig.GetDouble(rope, "low_freq_factor") ?? 1.0;
        double high = ModelConfig.GetDouble(rope, "high_freq_factor") ?? 4.0;
        double old = ModelConfig.GetDouble(rope, "original_max_position_embeddings") ?? 8192.0;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelength = 2 * Math.PI / inv[i];
            if (wavelength < old / high) continue;
            if (wavelength > old / low)
            {
                inv[i] /= factor;
                continue;
            }
            double smooth = (old / wavelength - low) / (high - low);
            inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
        }
    }

    /// <summary>cos and sin [T, RotaryDim] for positions 0..T-1, computed in float32 and cast to <paramref name="type"/>.</summary>
    public (Tensor Cos, Tensor Sin) Table(long length, ScalarType type, Device device)
    {
        Tensor positions = arange(Scalars.Of(0L), Scalars.Of((long)length), Scalars.One, ScalarType.Float32, device);
        Tensor freqs = positions.unsqueeze(1).mul(tensor(_inverseFrequencies, device: device).unsqueeze(0));
        Tensor emb = cat([freqs, freqs], -1);
        return (emb.cos().mul(Scalars.Of(AttentionScaling)).to(type), emb.sin().mul(Scalars.Of(AttentionScaling)).to(type));
    }

    /// <summary>Rotates x [T, heads, D] with a table from <see cref="Table"/>.</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long d = RotaryDim;
        Tensor rotated = x.narrow(-1, 0, d);
        Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
        Tensor result = rotated.mul(c).add(RotateHalf(rotated).mul(s), Scalars.One);
        return d == x.shape[^1] ? result : cat([result, x.narrow(-1, d, x.shape[^1] - d)], -1);
    }

    private static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    }
}
