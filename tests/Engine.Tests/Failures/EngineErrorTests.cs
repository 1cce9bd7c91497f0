using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Tests.Verification;
using ModelOptPS.Fixtures;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Failures;

/// <summary>Every failure reaches the caller as a ModelOptException with its id, never wrapped or overflowed.</summary>
public class EngineErrorTests : IDisposable
{
    private static readonly QualityOptions Small = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 16 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void AParallelLoopRethrowsTheEngineErrorOfItsBodies()
    {
        var error = new ModelOptException("Some", ErrorKind.InvalidData, "bad");
        var thrown = Assert.Throws<ModelOptException>(() => ParallelFailures.Run(() => Parallel.For(0, 64, i =>
        {
            if (i == 17) throw error;
        })));
        Assert.Same(error, thrown);
        Assert.Throws<InvalidTimeZoneException>(() => ParallelFailures.Run(() => throw new InvalidTimeZoneException()));
    }

    [Fact]
    public void UnwrapPrefersEngineErrorsThenCancellationInNestedAggregates()
    {
        var engine = new ModelOptException("Some", ErrorKind.InvalidData, "bad");
        var cancelled = new OperationCanceledException();
        var other = new InvalidOperationException();
        Assert.Same(engine, ParallelFailures.Unwrap(new AggregateException(other, new AggregateException(cancelled, engine))));
        Assert.Same(cancelled, ParallelFailures.Unwrap(new AggregateException(other, cancelled)));
        Assert.Same(other, ParallelFailures.Unwrap(new AggregateException(other)));
        Assert.Same(other, ParallelFailures.Unwrap(other));
    }

    /// <summary>A planned llama fixture with NaN in one element of layer 0's q_proj.</summary>
    private HFModel PlannedWithNaN(string preset)
    {
        string folder = TinyCheckpoints.Write("llama", _tmp.Combine("nan-" + Guid.NewGuid().ToString("N")[..6]));
        new CheckpointEditor(folder).Tensors(tensors =>
        {
            var weight = tensors.Single(t => t.Name == "model.layers.0.self_attn.q_proj.weight");
            weight.Data[10] = 0xC0; // bf16 NaN 0x7FC0, little-endian, at element 5
            weight.Data[11] = 0x7F;
        });
        var model = ModelImporter.Import(folder);
        model.Plan = QuantPlanner.Plan(model, Presets.Get(preset));
        return model;
    }

    [Fact]
    public void ANaNWeightIsNonFiniteWeightForExportAndQualityNotAnAggregate()
    {
        using var model = PlannedWithNaN("W4A16_NVFP4");
        var export = Assert.Throws<ModelOptException>(() => CheckpointExporter.Export(model, _tmp.Combine("out"), new ExportOptions()));
        Assert.Equal(NumericsErrorIds.NonFiniteWeight, export.ErrorId);
        Assert.Contains("q_proj", export.Message);
        Assert.False(Directory.Exists(_tmp.Combine("out")));
        var quality = Assert.Throws<ModelOptException>(() => QualityMeasurer.MeasurePlanned(model, Small));
        Assert.Equal(NumericsErrorIds.NonFiniteWeight, quality.ErrorId);
    }

    [Fact]
    public void TheAmaxPassOfThePlannedFormStopsOnCancellationBeforeReadingWeights()
    {
        // The NaN would be found by the amax pass; a cancelled token must stop it first.
        using var model = PlannedWithNaN("W4A16_NVFP4");
        Assert.ThrowsAny<OperationCanceledException>(() => QualityMeasurer.MeasurePlanned(model, Small, null, new CancellationToken(canceled: true)));
    }

    [Fact]
    public void EveryStepThatNeedsAPlanReportsTheSameError()
    {
        using var model = ModelImporter.Import(TinyCheckpoints.Write("llama", _tmp.Combine("noplan")));
        Action[] steps =
        [
            () => Calibrator.Run(model, new CalibrationOptions()),
            () => QualityMeasurer.MeasurePlanned(model, Small),
            () => CheckpointExporter.Export(model, _tmp.Combine("out"), new ExportOptions()),
            () => model.RequirePlan(),
        ];
        foreach (var step in steps)
        {
            var ex = Assert.Throws<ModelOptException>(step);
            Assert.Equal(HFModel.NoQuantPlan, ex.ErrorId);
            Assert.Equal(ErrorKind.InvalidOperation, ex.Kind);
            Assert.Equal(model.Path, ex.Path);
        }
    }

    [Fact]
    public void MoreTokensThanOneRunHoldsIsTooManyTokens()
    {
        string folder = TinyCheckpoints.Write("llama", _tmp.Combine("tokens"));
        var ex = Assert.Throws<ModelOptException>(() => TokenSequences.Build(folder, null, null,
            new SequenceOptions { NumSamples = 100_000, SequenceLength = 1_000_000 }, CorpusSplit.Train));
        Assert.Equal(TokenSequences.TooManyTokens, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("100,000,000,000 tokens", ex.Message);
    }

    [Fact]
    public void ABatchLargerThanOneArrayIsChunkTooLarge()
    {
        Assert.Equal(16 * 256, CalibrationOptions.TokensPerBatch(16, 256));
        var ex = Assert.Throws<ModelOptException>(() => CalibrationOptions.TokensPerBatch(100_000, 1_000_000));
        Assert.Equal(ExecutionErrors.ChunkTooLarge, ex.ErrorId);
        Assert.Contains("-BatchSize", ex.Message);
    }

    [Fact]
    public void AGatedDeltaRuleChunkLargerThanOneArrayIsChunkTooLargeBeforeAnyCopy()
    {
        // Expanded views cost no memory; the check must come before the inputs are copied out.
        using var scope = NewDisposeScope();
        long tokens = 1 << 20, heads = 64, dim = 64;
        var qk = zeros(1, 1, 1).expand(tokens, heads, dim);
        var gates = zeros(1, 1).expand(tokens, heads);
        var ex = Assert.Throws<ModelOptException>(() => GatedDeltaRule.Apply(qk, qk, qk, gates, gates));
        Assert.Equal(ExecutionErrors.ChunkTooLarge, ex.ErrorId);
        Assert.Contains("4,294,967,296 values", ex.Message);
    }

    [Fact]
    public void AWeightLargerThanOneArrayIsTensorTooLarge()
    {
        Assert.Equal(12, WeightArrays.Length("w", 3, 4));
        Assert.Equal(0, WeightArrays.Length("w", 0, long.MaxValue));
        var ex = Assert.Throws<ModelOptException>(() => WeightArrays.Length("lm_head.weight", 262_144, 8_192));
        Assert.Equal(WeightArrays.TensorTooLarge, ex.ErrorId);
        Assert.Contains("'lm_head.weight' [262144, 8192]", ex.Message);
        Assert.Throws<ModelOptException>(() => WeightArrays.Length("w", 1L << 40, 1L << 40, 1L << 40));
    }
}
