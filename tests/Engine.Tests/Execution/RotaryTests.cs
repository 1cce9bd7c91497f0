using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Tests.Execution.Reference;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Rotary embedding (full and partial) against <see cref="Naive.Rope"/>, and the frequencies each rope type gives.</summary>
public sealed class RotaryTests : BlockTesting
{
    [Theory]
    [InlineData(16, 1.0)]
    [InlineData(16, 0.25)]
    [InlineData(32, 0.5)]
    public void Apply_MatchesNaive(int headDim, double partial)
    {
        const int length = 9, heads = 3;
        double[] inv = Naive.InverseFrequencies(1e6, (int)(headDim * partial)).Select(v => (double)(float)v).ToArray();
        var rope = new RotaryEmbedding(inv.Select(v => (float)v).ToArray());
        double[][] x = TensorData.Random(Random, length, heads * headDim, 2.0);
        double[][] expected = x.Select((row, t) => Naive.Rope(row, headDim, t, inv)).ToArray();

        var (cos, sin) = rope.Table(length, ScalarType.Float32, CPU);
        Tensor actual = rope.Apply(TensorData.Of(x).view(length, heads, headDim), cos, sin).reshape(length, heads * headDim);
        AssertClose(expected, actual);
    }

    [Fact]
    public void FromConfig_DefaultAndPartial_UseThetaOverRotaryDim()
    {
        var rope = RotaryEmbedding.FromConfig(Config(new JsonObject { ["rope_theta"] = 1e7, ["partial_rotary_factor"] = 0.25 }), 256);
        Assert.Equal(64, rope.RotaryDim);
        Assert.Equal(Naive.InverseFrequencies(1e7, 64).Select(v => (float)v), rope.InverseFrequencies);
    }

    /// <summary>Llama 3.x scaling, written here from transformers' _compute_llama3_parameters independently of the engine.</summary>
    [Fact]
    public void FromConfig_Llama3_ScalesByWavelengthBand()
    {
        var scaling = new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
            ["original_max_position_embeddings"] = 8192,
        };
        var rope = RotaryEmbedding.FromConfig(Config(new JsonObject { ["rope_theta"] = 500000.0, ["rope_scaling"] = scaling }), 64);

        double[] expected = Naive.InverseFrequencies(500000, 64).Select(inv =>
        {
            double wavelength = 2 * Math.PI / inv, lowWavelength = 8192 / 1.0, highWavelength = 8192 / 4.0;
            double scaled = wavelength > lowWavelength ? inv / 32 : inv;
            double smooth = (8192 / wavelength - 1.0) / (4.0 - 1.0);
            bool medium = !(wavelength < highWavelength) && !(wavelength > lowWavelength);
            return medium ? (1 - smooth) * scaled / 32 + smooth * scaled : scaled;
        }).ToArray();
        Assert.Equal(expected.Select(v => (float)v), rope.InverseFrequencies);
        double[] plain = Naive.InverseFrequencies(500000, 64);
        Assert.Equal((float)plain[0], rope.InverseFrequencies[0]);        // short wavelength: kept
        Assert.Equal((float)(plain[^1] / 32), rope.InverseFrequencies[^1]); // long wavelength: divided by the factor
    }

    [Fact]
    public void FromConfig_UnknownRopeType_IsForwardNotSupported()
    {
        var config = Config(new JsonObject { ["rope_theta"] = 1e6, ["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 } });
        var error = Assert.Throws<Errors.ModelOptException>(() => RotaryEmbedding.FromConfig(config, 64));
        Assert.Equal(ExecutionErrors.ForwardNotSupported, error.ErrorId);
        Assert.Contains("yarn", error.Message);
    }

    private static ModelConfig Config(JsonObject json)
    {
        var folder = Path.Combine(Path.GetTempPath(), "modeloptps-rope-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            string path = Path.Combine(folder, "config.json");
            File.WriteAllText(path, json.ToJsonString());
            return ModelConfig.Load(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
