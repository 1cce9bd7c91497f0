using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quality;
using ModelOptPS.Engine.Quantization;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Torch;

/// <summary>
/// Every tensor the engine makes belongs to a DisposeScope, so none waits for a finalizer. TorchSharp counts tensors
/// created outside any scope per thread; the engine runs torch only on the calling thread (its parallel loops work on
/// spans, not tensors), so this thread's counts cover all of a path's tensors.
/// </summary>
public sealed class DisposeScopeTests : IDisposable
{
    private static readonly long[] Tokens = [3, 141, 59, 26, 255, 0, 97, 97];
    // With Hessian blocks, so every torch path of calibration runs.
    private static readonly CalibrationOptions Calibration = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 32, Seed = 5 }, CollectHessians = true };
    private static readonly QualityOptions Quality = new() { Sequences = new SequenceOptions { NumSamples = 2, SequenceLength = 24, Seed = 9 } };

    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    public static TheoryData<string> Families() => new(ForwardFamilies.Names);

    [Theory]
    [MemberData(nameof(Families))]
    public void ForwardCalibrationAndQualityCreateNoTensorOutsideAScope(string family)
    {
        using var model = ModelImporter.Import(ForwardFamilies.Write(family, _tmp.Combine(family)));
        model.Plan = QuantPlanner.Plan(model, Presets.Get("NVFP4_DEFAULT"));
        TorchRuntime.EnsureLoaded();

        Assert.Equal(0, CreatedOutsideScopes(() =>
        {
            using var runner = ModelRunner.Create(model);
            using var logits = runner.Forward(Tokens);
            Assert.Equal(2, logits.dim());
        }));
        Assert.Equal(0, CreatedOutsideScopes(() => model.Statistics = Calibrator.Run(model, Calibration).Statistics));
        Assert.Equal(0, CreatedOutsideScopes(() => Assert.True(QualityMeasurer.MeasurePlanned(model, Quality).MeanKl > 0)));
        string export = CheckpointExporter.Export(model, _tmp.Combine(family + "-nvfp4"), new ExportOptions()).Path;
        Assert.Equal(0, CreatedOutsideScopes(() => Assert.True(QualityMeasurer.MeasureExport(model, export, Quality).MeanKl > 0)));
    }

    [Fact]
    public void TheCountSeesATensorMadeOutsideAScope()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Equal(1, CreatedOutsideScopes(() => tensor(new float[] { 1, 2 }).Dispose()));
        Assert.Equal(0, CreatedOutsideScopes(() =>
        {
            using var scope = NewDisposeScope();
            tensor(new float[] { 1, 2 });
        }));
    }

    private static long CreatedOutsideScopes(Action path)
    {
        var statistics = DisposeScopeManager.Statistics;
        statistics.Reset();
        path();
        return statistics.CreatedOutsideScopeCount;
    }
}
