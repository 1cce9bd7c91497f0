using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>
/// What a calibrator sees: every input quantizer of the text decoder layers, named as <see cref="Quantizer.For"/> names
/// them (the plan's own naming, not the engine's), with the right shapes; routing; all-experts observation.
/// </summary>
public sealed class ObserverTests(GeneratedModels models) : IClassFixture<GeneratedModels>
{
    private static readonly long[][] Sequences = [[5, 9, 200, 31, 7], [250, 1, 64]];
    private const int TokenCount = 8;

    [Theory]
    [MemberData(nameof(GeneratedModels.Families), MemberType = typeof(GeneratedModels))]
    public void EveryLinearInputOfTheTextLayers_IsObserved_WithItsShape(string family)
    {
        using var model = models.Import(family);
        var observer = new RecordingObserver();
        using (var runner = ModelRunner.Create(model)) runner.RunLayerwise(Sequences, observer);

        // Every name but those of per-expert Linears is seen; a per-expert Linear is seen when a token was routed to it.
        var inputs = InputQuantizers(model);
        Assert.Empty(observer.Inputs.Keys.Except(inputs.Keys).Except(KvCacheQuantizers(model)));
        Assert.Empty(inputs.Where(kv => kv.Value.Module.Expert is null).Select(kv => kv.Key).Except(observer.Inputs.Keys));
        foreach (var (name, shapes) in observer.Inputs.Where(kv => inputs.ContainsKey(kv.Key)))
        {
            var (module, inFeatures) = inputs[name];
            Assert.All(shapes, shape => Assert.Equal([shape[0], inFeatures], shape));
            if (module.Kind != ModuleKind.FusedExperts && module.Expert is null)
                Assert.Equal(TokenCount, observer.Rows(name)); // every token once: mixers per sequence, feed-forwards on all tokens
        }

        int topK = model.ExpertsPerToken;
        foreach (var (container, shapes) in observer.Routing)
        {
            Assert.All(shapes, s => Assert.Equal([TokenCount, topK], s));
            // Routed tokens: each token goes to k experts, whose gate-side inputs together hold N·k rows.
            long routed = observer.Inputs.Where(kv => kv.Key.StartsWith(container + ".", StringComparison.Ordinal)
                    && (kv.Key.EndsWith("gate_up_proj_input_quantizer") || kv.Key.EndsWith(".gate_proj.input_quantizer") || kv.Key.EndsWith(".w1.input_quantizer")))
                .Sum(kv => kv.Value.Sum(s => s[0]));
            Assert.Equal(TokenCount * topK, routed);
        }
        Assert.Equal(model.Spec.IsMoE ? model.LayerCount : 0, observer.Routing.Count);
    }

    [Theory]
    [MemberData(nameof(GeneratedModels.Families), MemberType = typeof(GeneratedModels))]
    public void TheKvCacheOfEverySoftmaxAttentionBlock_IsObserved_UnderThePlansQuantizerNames(string family)
    {
        using var model = models.Import(family);
        var observer = new RecordingObserver();
        using (var runner = ModelRunner.Create(model)) runner.RunLayerwise(Sequences, observer);

        var expected = KvCacheQuantizers(model);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Order(StringComparer.Ordinal),
            observer.Inputs.Keys.Where(k => k.EndsWith("_bmm_quantizer", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        var config = model.Config;
        foreach (var name in expected)
        {
            // Per sequence, [tokens, KV heads, head dim]: before GQA repeats the KV heads.
            Assert.Equal(Sequences.Select(s => new long[] { s.Length, config.KeyValueHeads!.Value, config.HeadDim!.Value }), observer.Inputs[name]);
        }
    }

    [Fact]
    public void AttentionProjections_SeeTheSameTensor()
    {
        using var model = models.Import("qwen3");
        var observer = new RecordingObserver { KeepValues = true };
        using (var runner = ModelRunner.Create(model)) runner.RunLayerwise(Sequences, observer);
        float[] Seen(string projection) => observer.Values.First(v => v.Name == $"model.layers.1.self_attn.{projection}.input_quantizer").Values;
        Assert.Equal(Seen("q_proj"), Seen("k_proj"));
        Assert.Equal(Seen("q_proj"), Seen("v_proj"));
    }

    [Theory]
    [MemberData(nameof(GeneratedModels.Families), MemberType = typeof(GeneratedModels))]
    public void DeclaredSharedInputs_AreTheTensorsTheForwardReads(string family)
    {
        // The export's scale groups come from these declarations; the run shows each member the same values.
        using var model = models.Import(family);
        var observer = new RecordingObserver { KeepValues = true };
        using (var runner = ModelRunner.Create(model)) runner.RunLayerwise(Sequences, observer);
        List<float[]> Seen(string module) => observer.Values.Where(v => v.Name == module + ".input_quantizer").Select(v => v.Values).ToList();
        int compared = 0;
        foreach (var input in ModelBlueprint.SharedInputsOf(model))
        {
            var seen = input.Modules.Select(Seen).ToList();
            if (seen.Any(s => s.Count == 0)) continue; // fused experts are observed per container, idle experts not at all
            foreach (var other in seen.Skip(1)) Assert.Equal(seen[0], other);
            compared++;
        }
        Assert.True(compared >= model.LayerCount * 2, $"only {compared} shared inputs compared");
    }

    [Theory]
    [InlineData("qwen3_moe")]
    [InlineData("mixtral")]
    [InlineData("qwen3_5_moe")]
    public void AllExperts_EveryExpertSeesEveryToken_AndLogitsEqualTheRoutedRun(string family)
    {
        using var model = models.Import(family);
        var routed = new RecordingObserver();
        var all = new RecordingObserver();
        float[] expected = Logits(model, new RunnerOptions(), routed);
        float[] actual = Logits(model, new RunnerOptions { AllExperts = true }, all);

        // Equal up to float32 summation order: each expert's matmul now covers every token, and its routed rows are picked after.
        Assert.All(expected.Zip(actual), p => Assert.InRange(p.First - p.Second, -2e-6f, 2e-6f));
        var inputs = InputQuantizers(model);
        Assert.Equal(inputs.Keys.Append("lm_head.input_quantizer").Concat(KvCacheQuantizers(model)).Order(StringComparer.Ordinal),
            all.Inputs.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, (module, _)) in inputs.Where(kv => kv.Value.Module.Kind == ModuleKind.FusedExperts || kv.Value.Module.Expert is not null))
        {
            long perExpert = module.Kind == ModuleKind.FusedExperts ? module.ExpertCount!.Value : 1;
            Assert.Equal(TokenCount * perExpert, all.Rows(name));
        }
        Assert.Equal(routed.Routing.Keys, all.Routing.Keys);
    }

    [Fact]
    public void LmHeadInput_IsObservedWhenLogitsAreComputed()
    {
        using var model = models.Import("qwen2"); // tied embeddings: lm_head is the embedding table, observed as lm_head
        var observer = new RecordingObserver();
        using var runner = ModelRunner.Create(model);
        runner.RunLayerwise(Sequences, observer, onLogits: (_, _) => { });
        Assert.Equal(TokenCount, observer.Rows("lm_head.input_quantizer"));
    }

    private static float[] Logits(HFModel model, RunnerOptions options, RecordingObserver observer)
    {
        var logits = new List<float>();
        using var runner = ModelRunner.Create(model, options);
        runner.RunLayerwise(Sequences, observer, onLogits: (_, l) => logits.AddRange(l.data<float>().ToArray()));
        return logits.ToArray();
    }

    /// <summary>Input quantizer name → (module, in-features) for every quantizable module of the text decoder layers.</summary>
    private static Dictionary<string, (ModelModule Module, long InFeatures)> InputQuantizers(HFModel model) =>
        model.Modules
            .Where(m => m.Section == ModelSection.Text && m.Layer is not null)
            .SelectMany(m => Quantizer.For(m).Where(q => q.Role == QuantizerRole.Input).Select(q => (q, m)))
            .ToDictionary(x => x.q.Name, x => (x.m, InFeatures(x.m, x.q)));

    /// <summary>The KV-cache quantizers the planner names, of every attention block with a KV cache.</summary>
    private static List<string> KvCacheQuantizers(HFModel model) =>
        KvCachePlan.AttentionBlocks(model.Modules).SelectMany(b => Quantizer.ForKvCache(b.Attention, b.Key, b.Value)).Select(q => q.Name).ToList();

    private static long InFeatures(ModelModule module, Quantizer quantizer) =>
        quantizer.Projection == "down_proj" ? module.Parameters["down_proj"].Shape[2] : module.InFeatures!.Value;
}
