using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Layerwise GPTQ over a planned model, as ModelOpt's <c>layerwise_calibrate</c> + <c>gptq</c> do it: decoder layer by
/// decoder layer, the layer runs on the calibration tokens with its ORIGINAL weights while the Hessian H = XᵀX/N of every
/// NVFP4-weight unit's input is summed (fused experts: per expert, the tokens routed to it); each unit is solved
/// (<see cref="Gptq.Solve"/>, global amax = its shared-scale group's, <see cref="ScaleGroups"/>); then the layer runs
/// again with the GPTQ weights (dequantized) and that output feeds the next layer — ModelOpt's GPTQ default
/// <c>get_qdq_activations_from_prev_layer = True</c>. Units outside the decoder layers (lm_head, mtp, vision) are not
/// solved and are absent from the result. With <c>activations</c> (the plan's input and KV-cache fake quantization, e.g.
/// for W4A4) every pass runs with it and the Hessians are over the fake-quantized inputs, as ModelOpt's GPTQ (input
/// quantizers stay enabled; its <c>hessian_forward</c> sums <c>input_quantizer(x)</c>); without it, over the unquantized
/// inputs. FP8 units of the layer keep their original weights in the re-run (ModelOpt would fake-quantize them).
/// </summary>
public static class GptqCalibration
{
    /// <summary>Solutions by export unit prefix (<c>model.layers.0.self_attn.q_proj</c>, <c>…mlp.experts.3.gate_proj</c>).</summary>
    /// <remarks>For plans with NVFP4 inputs (W4A4) <see cref="HFModel.Statistics"/> must hold the input amaxes (run max calibration first).</remarks>
    public static IReadOnlyDictionary<string, GptqSolution> Run(HFModel model, CalibrationOptions options, GptqOptions? gptq = null,
        IProgress<RunnerProgress>? progress = null, CancellationToken cancellationToken = default, ActivationTransform? activations = null)
    {
        gptq ??= GptqOptions.Default;
        gptq.Validate();
        var plan = model.RequirePlan();
        var all = WeightUnits.From(model, plan);
        var units = all.Where(u => u.Decision.IsNvfp4Weights() && u.Module.Section == ModelSection.Text && u.Module.Layer is not null).ToList();
        if (units.Count == 0) return new Dictionary<string, GptqSolution>();
        var groups = ScaleGroups.Compute(model, all, cancellationToken);
        var (sequences, _) = TokenSequences.Build(model.Path, options.DatasetPath, options.Column, options.Sequences, CorpusSplit.Train);
        var byLayer = units.GroupBy(u => u.Module.Layer!.Value).ToDictionary(g => g.Key, g => g.ToList());

        var solutions = new Dictionary<string, GptqSolution>(StringComparer.Ordinal);
        var replacements = new GptqWeights();
        using var hessians = new GptqHessians(units.Where(u => u.Module.Kind == ModuleKind.FusedExperts)
            .Select(u => (u.ExpertsContainer!, u.InputQuantizer!)), activations);
        hessians.Expect(Keys(byLayer.GetValueOrDefault(0)));

        bool SolveLayer(int layer)
        {
            replacements.Clear();
            if (!byLayer.TryGetValue(layer, out var layerUnits))
            {
                hessians.Expect(Keys(byLayer.GetValueOrDefault(layer + 1)));
                return false;
            }
            foreach (var unit in layerUnits)
            {
                cancellationToken.ThrowIfCancellationRequested();
                float[] weight = ReadWeight(unit);
                var (hessian, tokens) = hessians.Hessian(GptqHessians.Key(unit.InputQuantizer!, Expert(unit)));
                var solution = hessian is null
                    ? Gptq.Nearest(unit.OutputPrefix, weight, unit.Rows, unit.Cols, groups.WeightAmax(unit), "no calibration token reached it")
                    : Gptq.Solve(unit.OutputPrefix, weight, unit.Rows, unit.Cols, hessian, groups.WeightAmax(unit), gptq);
                solutions[unit.OutputPrefix] = solution;
                replacements.Add(unit, solution.Dequantize());
            }
            hessians.Expect(Keys(byLayer.GetValueOrDefault(layer + 1)));
            return true;
        }

        // Float32 whatever options.ComputeDType says: the re-run's dequantized weights (E2M1 code x E4M3 scale x fp32
        // global scale) are not bf16 numbers, and the Hessians are factorized, so they are kept at full precision.
        using var runner = ModelRunner.Create(model, new RunnerOptions
        {
            Device = options.Device, Threads = options.Threads, TokensPerChunk = options.TokensPerChunk,
            AllExperts = false, // GPTQ's Hessians are over the tokens routed to each expert
            WeightTransform = replacements.Apply,
            ActivationTransform = activations,
        });
        runner.RunLayerwise(sequences, hessians, progress, cancellationToken, afterLayer: SolveLayer);
        return solutions;
    }

    private static int? Expert(WeightUnit unit) => unit.Module.Kind == ModuleKind.FusedExperts ? unit.Expert : null;

    private static IEnumerable<string> Keys(List<WeightUnit>? units) =>
        units?.Select(u => GptqHessians.Key(u.InputQuantizer!, Expert(u))) ?? [];

    /// <summary>A unit's weight [rows, cols] widened to fp32.</summary>
    internal static float[] ReadWeight(WeightUnit unit)
    {
        using var bytes = unit.Read();
        var values = new float[(long)unit.Rows * unit.Cols];
        for (int k = 0; k < values.Length; k++) values[k] = Nvfp4Reference.ReadElement(bytes.Span, unit.DType, k);
        return values;
    }
}
