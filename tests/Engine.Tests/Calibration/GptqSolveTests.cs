using ModelOptPS.Engine.Calibration;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;
using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Tests.Calibration;

public sealed class GptqSolveTests
{
    [Theory]
    [InlineData(32, 64, 512, 1)]
    [InlineData(48, 256, 1024, 2)] // two GPTQ blocks: the lazy batch update between them
    public void GptqReducesTheLayerOutputErrorAgainstMax(int rows, int cols, int tokens, int seed)
    {
        var layer = new GptqTestLayer(rows, cols, tokens, seed);
        var solution = Gptq.Solve("layer", layer.Weight.ToArray(), rows, cols, layer.Hessian, layer.GlobalAmax);

        double gptq = layer.OutputError(solution.Dequantize()), max = layer.OutputError(layer.MaxQuantized());
        Assert.True(gptq < 0.8 * max, $"GPTQ output error {gptq:G4} vs max {max:G4}");
        // The reported numbers are the same comparison (H = XᵀX/N), in ModelOpt's relative form.
        Assert.True(solution.Errors.Gptq < solution.Errors.Max);
        Assert.Equal(gptq / max, solution.Errors.Gptq / solution.Errors.Max, 2);
    }

    [Fact]
    public void TheSolutionIsValidNvfp4WithMaxCalibratedScales()
    {
        var layer = new GptqTestLayer(32, 128, 256, 3);
        var solution = Gptq.Solve("layer", layer.Weight.ToArray(), 32, 128, layer.Hessian, layer.GlobalAmax);

        // Block scales are those of dynamic NVFP4 on the original weight at this global amax (ModelOpt's static quantizer).
        var packed = new byte[Nvfp4.PackedLength(32, 128)];
        var scales = new byte[Nvfp4.ScaleLength(32, 128)];
        var max = Nvfp4.Quantize("layer", MemoryMarshal.AsBytes(layer.Weight.AsSpan()), DType.F32, 32, 128, packed, scales,
            new Nvfp4Options { GlobalAmax = layer.GlobalAmax });
        Assert.Equal(scales, solution.BlockScales);
        Assert.Equal(max.WeightScale2, solution.WeightScale2);
        Assert.All(solution.BlockScales, s => Assert.True(float.IsFinite(E4M3.ToFloat(s)) && E4M3.ToFloat(s) > 0));
        Assert.Equal(packed.Length, solution.Packed.Length);
        Assert.NotEqual(packed, solution.Packed); // GPTQ moved codes

        // Re-quantizing the dequantized weight with the same (static) scales gives back the same values: the codes are
        // what export re-quantizing a GPTQ-updated weight writes.
        var dequantized = solution.Dequantize();
        for (int k = 0; k < dequantized.Length; k++)
        {
            float divisor = E4M3.ToFloat(solution.BlockScales[k / 16]) * solution.WeightScale2;
            Assert.Equal(dequantized[k], E2M1.Decode(E2M1.Encode(dequantized[k] / divisor)) * divisor);
        }
        Assert.False(solution.HessianFallback);
        Assert.Equal(0, solution.DeadColumns);
    }

    [Fact]
    public void DeadColumnsGetZeroCodesAndTheRestStillImproves()
    {
        var layer = new GptqTestLayer(16, 64, 256, 4);
        int[] dead = [0, 5, 17, 63];
        foreach (int c in dead)
            for (int r = 0; r < 16; r++) layer.Weight[r * 64 + c] = 0f;

        var solution = Gptq.Solve("layer", layer.Weight.ToArray(), 16, 64, layer.Hessian, layer.GlobalAmax);

        Assert.Equal(dead.Length, solution.DeadColumns);
        var dequantized = solution.Dequantize();
        Assert.All(dequantized, v => Assert.True(float.IsFinite(v)));
        Assert.All(dead, c => Assert.All(Enumerable.Range(0, 16), r => Assert.Equal(0f, dequantized[r * 64 + c])));
        Assert.True(layer.OutputError(dequantized) < layer.OutputError(layer.MaxQuantized()));
    }

    [Fact]
    public void AZeroHessianFallsBackToRoundToNearest()
    {
        var layer = new GptqTestLayer(8, 32, 16, 5);
        var solution = Gptq.Solve("idle", layer.Weight.ToArray(), 8, 32, new float[32 * 32], layer.GlobalAmax);
        Assert.True(solution.HessianFallback);
        Assert.Single(solution.Warnings);
        Assert.Equal(layer.MaxQuantized(), solution.Dequantize());
    }

    [Fact]
    public void SameInputsGiveTheSameBytes()
    {
        var layer = new GptqTestLayer(64, 256, 512, 6);
        var a = Gptq.Solve("layer", layer.Weight.ToArray(), 64, 256, layer.Hessian, layer.GlobalAmax);
        var b = Gptq.Solve("layer", layer.Weight.ToArray(), 64, 256, layer.Hessian, layer.GlobalAmax);
        Assert.Equal(a.Packed, b.Packed);
        Assert.Equal(a.BlockScales, b.BlockScales);
        Assert.Equal(a.WeightScale2, b.WeightScale2);
    }

    [Theory]
    [InlineData(16)]  // every column block is its own GPTQ block: exercises the lazy batch update most
    [InlineData(128)] // ModelOpt's default (one block here)
    public void AgreesWithAPlainDoubleGptq(int blockSize)
    {
        var layer = new GptqTestLayer(8, 64, 256, 7);
        var solution = Gptq.Solve("layer", layer.Weight.ToArray(), 8, 64, layer.Hessian, layer.GlobalAmax, new GptqOptions { BlockSize = blockSize });
        var divisors = solution.BlockScales.Select(s => E4M3.ToFloat(s) * solution.WeightScale2).ToArray();
        var reference = GptqReference.Solve(layer.Weight, 8, 64, layer.Hessian, divisors, 0.01);

        var codes = Enumerable.Range(0, 8 * 64).Select(k => (byte)((solution.Packed[k / 2] >> (4 * (k & 1))) & 0xF)).ToArray();
        // -0 and +0 are the same value; compare what the codes mean.
        Assert.Equal(reference.Select(c => E2M1.Decode(c)), codes.Select(c => E2M1.Decode(c)));
    }

    [Fact]
    public void BadInputsAreRefusedWithTheirIds()
    {
        var layer = new GptqTestLayer(4, 32, 16, 8);
        Assert.Equal(GptqErrorIds.GptqShapeMismatch,
            Assert.Throws<ModelOptException>(() => Gptq.Solve("x", layer.Weight, 4, 32, new float[31 * 31], 1f)).ErrorId);
        var nan = layer.Hessian.ToArray();
        nan[3] = float.NaN;
        Assert.Equal(GptqErrorIds.GptqNonFiniteInput,
            Assert.Throws<ModelOptException>(() => Gptq.Solve("x", layer.Weight, 4, 32, nan, 1f)).ErrorId);
        Assert.Equal(GptqErrorIds.InvalidGptqOptions,
            Assert.Throws<ModelOptException>(() => Gptq.Solve("x", layer.Weight, 4, 32, layer.Hessian, 1f, new GptqOptions { BlockSize = 24 })).ErrorId);
        Assert.Equal(NumericsErrorIds.Nvfp4ShapeNotBlockAligned,
            Assert.Throws<ModelOptException>(() => Gptq.Solve("x", new float[4 * 20], 4, 20, new float[400], 1f)).ErrorId);
    }
}
