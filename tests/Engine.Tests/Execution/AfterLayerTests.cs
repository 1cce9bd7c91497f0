using ModelOptPS.Engine.Execution;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>RunLayerwise's afterLayer hook (layerwise GPTQ): called once per layer; a re-run starts from the layer's input.</summary>
public sealed class AfterLayerTests(GeneratedModels models) : IClassFixture<GeneratedModels>
{
    private static readonly long[][] Sequences = [[5, 9, 200, 31, 7, 8], [250, 1, 64]];

    [Theory]
    [InlineData("qwen3_5_moe")]
    [InlineData("llama")]
    public void ARerunWithTheSameWeightsGivesTheSameLogits_AndANewWeightFeedsTheNextLayer(string family)
    {
        using var model = models.Import(family);
        float[][] Run(Func<int, bool>? afterLayer, WeightTransform? transform = null, RecordingObserver? observer = null)
        {
            using var runner = ModelRunner.Create(model, new RunnerOptions { WeightTransform = transform });
            var logits = new float[Sequences.Length][];
            runner.RunLayerwise(Sequences, observer, onLogits: (s, l) => logits[s] = l.data<float>().ToArray(), afterLayer: afterLayer);
            return logits;
        }

        var plain = Run(null);
        var calls = new List<int>();
        var observer = new RecordingObserver();
        var rerun = Run(layer => { calls.Add(layer); return true; }, observer: observer);
        using (var runner = ModelRunner.Create(model)) Assert.Equal(Enumerable.Range(0, runner.LayerCount), calls);
        Assert.Equal(plain, rerun); // same weights, same input: the re-run reproduces the layer exactly
        var once = new RecordingObserver();
        Run(null, observer: once);
        Assert.Equal(once.Inputs.Keys.Order(), observer.Inputs.Keys.Order());
        Assert.All(once.Inputs, kv => Assert.Equal(kv.Value.Count, observer.Inputs[kv.Key].Count)); // the re-run is not observed

        // Zeroing every weight only in layer 0's re-run changes what follows.
        bool rerunning = false;
        var changed = Run(layer => rerunning = layer == 0, (name, w) => rerunning && name.Contains("layers.0.", StringComparison.Ordinal) ? zeros_like(w) : w);
        Assert.NotEqual(plain, changed);
    }
}
