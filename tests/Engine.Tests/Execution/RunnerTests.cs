using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>The runner as a whole: layer-by-layer equals one sequence at a time, one layer in memory, hooks, errors.</summary>
public sealed class RunnerTests(GeneratedModels models) : IClassFixture<GeneratedModels>
{
    private static readonly long[][] Sequences = [[5, 9, 200, 31, 7, 8], [250, 1, 64], [17, 17, 42, 99]];

    [Theory]
    [MemberData(nameof(GeneratedModels.Families), MemberType = typeof(GeneratedModels))]
    public void LayerByLayerRun_EqualsWholeModelRunOfEachSequence(string family)
    {
        using var model = models.Import(family);
        using var runner = ModelRunner.Create(model, new RunnerOptions { TokensPerChunk = 5 }); // chunks that straddle sequences
        var layerwise = new float[Sequences.Length][];
        runner.RunLayerwise(Sequences, null, onLogits: (s, l) => layerwise[s] = l.data<float>().ToArray());
        for (int s = 0; s < Sequences.Length; s++)
        {
            using var logits = runner.Forward(Sequences[s]);
            float[] whole = logits.data<float>().ToArray();
            // Different batch shapes may change float32 summation order in the matmuls: equal to a few ulps of the logits.
            Assert.All(whole.Zip(layerwise[s]), p => Assert.InRange(p.First - p.Second, -2e-6f, 2e-6f));
        }
    }

    [Theory]
    [InlineData("qwen3_moe")]
    [InlineData("qwen3_5_moe")]
    [InlineData("qwen3_next")]
    public void OnlyOneLayersWeights_AreAliveAtATime(string family)
    {
        using var model = models.Import(family);
        using var runner = ModelRunner.Create(model);
        runner.RunLayerwise(Sequences, null);

        long largestLayer = Enumerable.Range(0, model.LayerCount).Max(l => LayerFloat32Bytes(model, l));
        Assert.Equal(largestLayer, runner.WeightMemory.PeakBytes);
        Assert.Equal(0, runner.WeightMemory.LiveBytes);
        Assert.Equal(model.LayerCount, runner.WeightMemory.LayersMaterialized);
    }

    [Fact]
    public void NonFiniteActivation_NamesTheLayerAndModule()
    {
        using var model = models.Import("llama");
        var options = new RunnerOptions
        {
            WeightTransform = (name, w) => name == "model.layers.1.self_attn.o_proj" ? full_like(w, Scalars.Of(double.PositiveInfinity)) : w,
        };
        using var runner = ModelRunner.Create(model, options);
        var error = Assert.Throws<ModelOptException>(() => runner.RunLayerwise(Sequences, null));
        Assert.Equal(ExecutionErrors.NonFiniteActivation, error.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, error.Kind);
        Assert.Contains("decoder layer 1", error.Message);
        Assert.Contains("model.layers.1.mlp.gate_proj", error.Message);
        Assert.Equal(0, runner.WeightMemory.LiveBytes);
    }

    [Fact]
    public void UnknownFamily_IsForwardNotSupported()
    {
        using var folder = new TempFolder();
        var recipe = TinyCheckpoints.Create("llama");
        recipe.Config["architectures"] = new System.Text.Json.Nodes.JsonArray("FancyForCausalLM");
        recipe.Config["model_type"] = "fancy";
        using var model = ModelImporter.Import(recipe.Write(folder.Path));
        var error = Assert.Throws<ModelOptException>(() => ModelRunner.Create(model));
        Assert.Equal(ExecutionErrors.ForwardNotSupported, error.ErrorId);
    }

    [Fact]
    public void LayerWithTensorsItCannotUse_IsForwardNotSupported()
    {
        using var folder = new TempFolder();
        var recipe = TinyCheckpoints.Create("llama").Add("model.layers.1.self_attn.sinks", [4]);
        using var model = ModelImporter.Import(recipe.Write(folder.Path));
        var error = Assert.Throws<ModelOptException>(() => ModelRunner.Create(model));
        Assert.Equal(ExecutionErrors.ForwardNotSupported, error.ErrorId);
        Assert.Contains("model.layers.1.self_attn.sinks", error.Message);
    }

    [Fact]
    public void Cancellation_StopsBetweenLayers_AndFreesTheLayer()
    {
        using var model = models.Import("qwen3_moe");
        using var runner = ModelRunner.Create(model);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(p => { if (p.LayersDone == 1) cancel.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => runner.RunLayerwise(Sequences, null, progress, cancel.Token));
        Assert.Equal(1, runner.WeightMemory.LayersMaterialized);
        Assert.Equal(0, runner.WeightMemory.LiveBytes);
    }

    [Fact]
    public void Progress_IsReportedAfterTheEmbeddingAndEachLayer()
    {
        using var model = models.Import("qwen3_next");
        using var runner = ModelRunner.Create(model);
        var reports = new List<RunnerProgress>();
        runner.RunLayerwise(Sequences, null, new SynchronousProgress(reports.Add));
        Assert.Equal(Enumerable.Range(0, model.LayerCount + 1), reports.Select(r => r.LayersDone));
        Assert.All(reports, r => Assert.Equal(13, r.Tokens));
        Assert.Equal(100, reports[^1].PercentComplete);
    }

    [Fact]
    public void TokenOutsideTheVocabulary_IsRejected()
    {
        using var model = models.Import("llama");
        using var runner = ModelRunner.Create(model);
        long vocabulary = model.Checkpoint.GetTensor("model.embed_tokens.weight").Info.Shape[0];
        var error = Assert.Throws<ModelOptException>(() => runner.RunLayerwise([[1, vocabulary]], null));
        Assert.Equal(ExecutionErrors.TokenOutOfRange, error.ErrorId);
    }

    [Fact]
    public void CudaWithoutCuda_IsDeviceNotAvailable()
    {
        using var model = models.Import("llama");
        if (ModelOptPS.Engine.Torch.TorchRuntime.IsLoaded && cuda.is_available()) return; // a CUDA build would accept it
        var error = Assert.Throws<ModelOptException>(() => ModelRunner.Create(model, new RunnerOptions { Device = "cuda" }));
        Assert.Equal(ExecutionErrors.DeviceNotAvailable, error.ErrorId);
    }

    [Fact]
    public void BFloat16Run_StaysCloseToFloat32()
    {
        using var model = models.Import("qwen3_5_moe");
        using var runner32 = ModelRunner.Create(model);
        using var runner16 = ModelRunner.Create(model, new RunnerOptions { ComputeDType = ComputeDType.BFloat16 });
        using var scope = NewDisposeScope();
        Tensor reference = runner32.Forward(Sequences[0]);
        Tensor bf16 = runner16.Forward(Sequences[0]);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        // bf16 keeps 8 significant bits (relative step 2^-8 ≈ 0.4%); a few layers of it stay within a few percent.
        double scale = reference.abs().max().item<float>();
        double difference = bf16.to(ScalarType.Float32).sub(reference).abs().max().item<float>();
        Assert.True(difference < 0.05 * scale, $"bf16 differs by {difference} (scale {scale})");
    }

    [Fact]
    public void WeightTransform_SeesEveryLinearByName_AndItsResultIsUsed()
    {
        using var model = models.Import("qwen3_5_moe");
        var seen = new Dictionary<string, long[]>();
        var options = new RunnerOptions
        {
            WeightTransform = (name, w) =>
            {
                seen[name] = w.shape;
                return name == "lm_head" ? w.mul(Scalars.Of(2L)) : w;
            },
        };
        using var plain = ModelRunner.Create(model);
        using var transformed = ModelRunner.Create(model, options);
        using var scope = NewDisposeScope();
        Tensor expected = plain.Forward(Sequences[0]).mul(Scalars.Of(2L));
        Tensor actual = transformed.Forward(Sequences[0]);
        Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-6));

        // Every Linear and router of the text model (lm_head included) by module name, fused experts by parameter, with their shapes.
        var text = model.Modules.Where(m => m.Section == ModelSection.Text).ToList();
        var weights = text.Where(m => m.Kind is ModuleKind.Linear or ModuleKind.Router).Select(m => (Name: m.Name, Shape: m.Shape))
            .Concat(text.Where(m => m.Kind == ModuleKind.FusedExperts)
                .SelectMany(m => m.Parameters.Select(p => (Name: $"{m.Name}.{p.Key}", Shape: p.Value.Shape))));
        Assert.Equal(weights.OrderBy(w => w.Name, StringComparer.Ordinal).Select(w => $"{w.Name} {string.Join('x', w.Shape)}"),
            seen.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {string.Join('x', kv.Value)}"));
    }

    [Fact]
    public void ActivationTransform_ReplacesTheInput_UnderTheObserversNames()
    {
        using var model = models.Import("qwen3_moe");
        var observer = new RecordingObserver();
        var transformed = new HashSet<string>();
        var options = new RunnerOptions
        {
            ActivationTransform = (name, x) =>
            {
                transformed.Add(name);
                return name.EndsWith(".mlp.experts.0.down_proj.input_quantizer") ? zeros_like(x) : x;
            },
        };
        using var runner = ModelRunner.Create(model, options);
        using var plain = ModelRunner.Create(model);
        runner.RunLayerwise(Sequences, observer);
        Assert.Equal(observer.Inputs.Keys.ToHashSet(), transformed);

        // Zeroing expert 0's down_proj input removes its contribution: the logits change.
        using var scope = NewDisposeScope();
        Assert.False(runner.Forward(Sequences[0]).allclose(plain.Forward(Sequences[0])));
    }

    private static long LayerFloat32Bytes(HFModel model, int layer)
    {
        string prefix = $"{(model.Family == "Qwen3_5Moe" ? "model.language_model." : "model.")}layers.{layer}.";
        return model.Checkpoint.Tensors.Values.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)).Sum(t => t.Info.ElementCount * 4);
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<RunnerProgress> report) : IProgress<RunnerProgress>
    {
        public void Report(RunnerProgress value) => report(value);
    }
}
