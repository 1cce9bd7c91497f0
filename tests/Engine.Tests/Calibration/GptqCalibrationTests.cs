using System.Diagnostics;
using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Tests.Execution;
using ModelOptPS.Fixtures;
using Xunit.Abstractions;

namespace ModelOptPS.Engine.Tests.Calibration;

public sealed class GptqCalibrationTests(ITestOutputHelper output) : IDisposable
{
    private static readonly CalibrationOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 4, SequenceLength = 32, Seed = 5 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private HFModel Calibrated(string family)
    {
        var model = ModelImporter.Import(TinyCheckpoints.Write(family, _tmp.Combine(family + Guid.NewGuid().ToString("N")[..4])));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT"));
        model.Statistics = Calibrator.Run(model, Small).Statistics;
        return model;
    }

    [Fact]
    public void EveryDecoderUnitOfTheQwen35MoeIsSolvedAndGptqBeatsMaxOnItsRealInputs()
    {
        using var model = Calibrated("qwen3_5_moe");
        var clock = Stopwatch.StartNew();
        var solutions = GptqCalibration.Run(model, Small);
        clock.Stop();
        int layers = model.Modules.Where(m => m.Layer is not null && m.Section == ModelSection.Text).Select(m => m.Layer).Distinct().Count();
        output.WriteLine($"GPTQ on the generated qwen3_5_moe: {layers} layers, {solutions.Count} units, {clock.Elapsed.TotalMilliseconds:F0} ms " +
                         $"({clock.Elapsed.TotalMilliseconds / layers:F0} ms per layer)");

        var units = WeightUnits.From(model, model.Plan!)
            .Where(u => u.Decision.IsNvfp4Weights() && u.Module.Section == ModelSection.Text && u.Module.Layer is not null).ToList();
        Assert.Equal(units.Select(u => u.OutputPrefix).Order(), solutions.Keys.Order());
        Assert.Contains(units, u => u.Module.Kind == ModuleKind.FusedExperts);
        foreach (var u in units)
        {
            var s = solutions[u.OutputPrefix];
            Assert.Equal((u.Rows, u.Cols), (s.Rows, s.Cols));
            Assert.All(s.Dequantize(), v => Assert.True(float.IsFinite(v)));
        }

        // Experts GPTQ found no token for are exactly those max calibration counted none for (the expert index is right).
        foreach (var u in units.Where(u => u.Module.Kind == ModuleKind.FusedExperts))
        {
            long tokens = model.Statistics!.TokensPerExpert[u.ExpertsContainer!][u.Expert!.Value];
            Assert.Equal(tokens == 0, solutions[u.OutputPrefix].HessianFallback);
        }

        // The layer-output error on the real calibration inputs (H = XᵀX/N), against max with the same scales.
        var solved = units.Select(u => solutions[u.OutputPrefix]).Where(s => !s.HessianFallback).ToList();
        Assert.All(solved.Where(s => !s.Name.Contains(".experts.", StringComparison.Ordinal)),
            s => Assert.True(s.Errors.Gptq < s.Errors.Max, $"{s.Name}: GPTQ {s.Errors.Gptq:G3} vs max {s.Errors.Max:G3}"));
        Assert.True(solved.Sum(s => s.Errors.Gptq) < 0.8 * solved.Sum(s => s.Errors.Max));
    }

    public static IEnumerable<object[]> Families => TinyCheckpoints.Families.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilyGetsASolutionPerDecoderUnit(string family)
    {
        using var model = Calibrated(family);
        var solutions = GptqCalibration.Run(model, Small);
        var units = WeightUnits.From(model, model.Plan!)
            .Where(u => u.Decision.IsNvfp4Weights() && u.Module.Section == ModelSection.Text && u.Module.Layer is not null).ToList();
        Assert.Equal(units.Select(u => u.OutputPrefix).Order(), solutions.Keys.Order());
        var solved = solutions.Values.Where(s => !s.HessianFallback).ToList();
        Assert.NotEmpty(solved);
        Assert.True(solved.Sum(s => s.Errors.Gptq) < solved.Sum(s => s.Errors.Max));
    }

    [Fact]
    public void TheDriverSolvesFromTheInputsAQuantizedPreviousLayerProduces()
    {
        using var model = Calibrated("qwen3_5_moe");
        var solutions = GptqCalibration.Run(model, Small);
        var units = WeightUnits.From(model, model.Plan!)
            .Where(u => u.Decision.IsNvfp4Weights() && u.Module.Section == ModelSection.Text && u.Module.Layer is not null).ToList();
        var (sequences, _) = TokenSequences.Build(model.Path, null, null, Small.Sequences, CorpusSplit.Train);

        // Layer 0 from the original model's inputs; layer 1 from a model whose layer 0 carries its GPTQ weights.
        var layer0 = units.First(u => u.Module.Layer == 0 && u.Expert is null);
        Assert.Equal(solutions[layer0.OutputPrefix].Packed, SolveFromRecordedInputs(model, sequences, layer0, new GptqWeights()).Packed);

        var quantized0 = new GptqWeights();
        foreach (var u in units.Where(u => u.Module.Layer == 0)) quantized0.Add(u, solutions[u.OutputPrefix].Dequantize());
        var layer1 = units.First(u => u.Module.Layer == 1 && u.Expert is null);
        var expected = SolveFromRecordedInputs(model, sequences, layer1, quantized0);
        Assert.Equal(expected.Packed, solutions[layer1.OutputPrefix].Packed);
        Assert.NotEqual(expected.Packed, SolveFromRecordedInputs(model, sequences, layer1, new GptqWeights()).Packed);
    }

    [Fact]
    public void WithTheActivationFakeQuantizationTheHessianIsOverQuantizedInputs()
    {
        using var model = Calibrated("qwen3_5_moe");
        var planned = new ModelOptPS.Engine.Quality.PlannedQuantization(model, model.Plan!, CancellationToken.None);
        ActivationTransform activations = (name, x) => planned.Activation(name)?.FakeQuantize(x) ?? x;
        var solutions = GptqCalibration.Run(model, Small, activations: activations);
        var plain = GptqCalibration.Run(model, Small);
        var (sequences, _) = TokenSequences.Build(model.Path, null, null, Small.Sequences, CorpusSplit.Train);

        var unit = WeightUnits.From(model, model.Plan!).First(u => u.Module.Layer == 0 && u.Expert is null && u.Decision == QuantDecision.Nvfp4);
        var expected = SolveFromRecordedInputs(model, sequences, unit, new GptqWeights(), activations);
        Assert.Equal(expected.Packed, solutions[unit.OutputPrefix].Packed);
        Assert.NotEqual(plain[unit.OutputPrefix].Packed, solutions[unit.OutputPrefix].Packed);
        var solved = solutions.Values.Where(s => !s.HessianFallback).ToList();
        Assert.True(solved.Sum(s => s.Errors.Gptq) < 0.8 * solved.Sum(s => s.Errors.Max));
    }

    [Fact]
    public void SameDataGivesTheSameBytes()
    {
        using var model = Calibrated("qwen3_5_moe");
        var a = GptqCalibration.Run(model, Small);
        var b = GptqCalibration.Run(model, Small);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.All(a, kv => Assert.Equal(kv.Value.Packed, b[kv.Key].Packed));
    }

    /// <summary>An independent H from recorded inputs (in double), solved by <see cref="Gptq.Solve"/>.</summary>
    private static GptqSolution SolveFromRecordedInputs(HFModel model, IReadOnlyList<long[]> sequences, WeightUnit unit, GptqWeights weights,
        ActivationTransform? activations = null)
    {
        var recorder = new RecordingObserver { KeepValues = true };
        using (var runner = ModelRunner.Create(model, new RunnerOptions
               {
                   WeightTransform = weights.Apply, ActivationTransform = activations, TokensPerChunk = Small.TokensPerChunk,
               }))
            runner.RunLayerwise(sequences, recorder);
        var rows = recorder.Values.Where(v => v.Name == unit.InputQuantizer)
            .SelectMany(v => activations is null ? v.Values : FakeQuantized(activations, v.Name, v.Values, unit.Cols))
            .Select(v => (double)v).ToArray();
        var hessian = GptqTestLayer.HessianOf(rows, rows.Length / unit.Cols, unit.Cols);
        var weight = GptqCalibration.ReadWeight(unit);
        var groups = ScaleGroups.Compute(model, WeightUnits.From(model, model.Plan!), CancellationToken.None);
        return Gptq.Solve(unit.OutputPrefix, weight, unit.Rows, unit.Cols, hessian, groups.WeightAmax(unit));
    }

    private static float[] FakeQuantized(ActivationTransform activations, string name, float[] values, int cols)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var x = TorchSharp.torch.tensor(values, [values.Length / cols, cols], TorchSharp.torch.ScalarType.Float32);
        return activations(name, x).contiguous().data<float>().ToArray();
    }
}
