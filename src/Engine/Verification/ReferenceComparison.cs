using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The -Reference checks of one module: unquantized tensors equal the source byte for byte; an NVFP4 weight
/// dequantizes to within <see cref="ErrorBound"/> of its source (and, when it does not, which mix-up explains it).
/// Records each NVFP4 weight's source amax for the weight_scale_2 check of its scale group.
/// </summary>
internal sealed class ReferenceComparison(ReferenceMap map, bool reroundedCodesAllowed, CancellationToken cancellationToken)
{
    private readonly Dictionary<string, float> _sourceAmax = new(StringComparer.Ordinal);

    public ReferenceMap Map => map;

    /// <summary>Compares a tensor that should be a copy of its source.</summary>
    public void CompareCopy(TensorRef exported, CheckBuilder check)
    {
        string name = exported.Name;
        if (!map.TryGet(name, out var source))
        {
            check.Fail(VerificationIds.TensorNotInSource, $"'{name}' is not in the source checkpoint (nor a part of a fused expert tensor there).");
            return;
        }
        if (source.DType != exported.Info.DType || !source.Shape.SequenceEqual(exported.Info.Shape))
        {
            check.Fail(VerificationIds.TensorModified,
                $"'{name}' is {exported.Info.DType} {exported.Info.ShapeText} but {source.Origin} is {source.DType} {Text.Shape(source.Shape)}; unquantized tensors are copied unchanged.");
            return;
        }
        long difference = source.FirstDifference(exported);
        if (difference < 0) return;
        var other = map.Confusable(name).FirstOrDefault(c => c.FirstDifference(exported) < 0);
        if (other is not null)
            check.Fail(VerificationIds.WeightsOfOtherModule,
                $"'{name}' holds the bytes of {other.Origin}, not of {source.Origin} (experts out of order, or gate and up swapped?).");
        else
            check.Fail(VerificationIds.TensorModified,
                $"'{name}' differs from {source.Origin} from element {difference / DTypes.SizeOf(source.DType)} on (byte {difference}); unquantized tensors are copied byte for byte.");
    }

    /// <summary>Dequantizes an NVFP4 weight and compares it with its source under the NVFP4 error bound.</summary>
    public void CompareQuantized(QuantizedModule weight, CheckBuilder check)
    {
        string name = weight.Name + ".weight";
        if (!map.TryGet(name, out var source))
        {
            check.Fail(VerificationIds.TensorNotInSource, $"The source has no '{name}' (nor a fused expert tensor it is a part of) for this NVFP4 weight.");
            return;
        }
        if (!DTypes.IsFloatingSource(source.DType) || source.Shape.Length != 2 || source.Shape[0] != weight.Rows || source.Shape[1] != weight.Cols)
        {
            check.Fail(VerificationIds.ShapeMismatch,
                $"The NVFP4 weight is [{weight.Rows}, {weight.Cols}] but {source.Origin} is {source.DType} {Text.Shape(source.Shape)}.");
            return;
        }
        if (!weight.Usable)
        {
            _sourceAmax[weight.Name] = source.Amax(); // its scale group's weight_scale_2 still depends on it
            return;
        }
        var tally = BoundCheck.Measure(source, weight, WeightLayout.Contract, stopAtFirstViolation: false, cancellationToken);
        _sourceAmax[weight.Name] = tally.SourceAmax;
        check.RelativeRmsError = tally.RelativeRmsError;
        check.SqnrDb = tally.SqnrDb;
        if (tally.Passes(reroundedCodesAllowed))
        {
            string sqnr = tally.SqnrDb is { } db ? $" (SQNR {Text.Number(db)} dB)" : "";
            check.Note = tally.IsGptqLike
                ? $"codes are not the rounding of {source.Origin} in {tally.Violations} of {tally.Elements} values, as GPTQ's are: every block " +
                  $"keeps the max scale of its source block and the error is within {ErrorBound.ReroundedErrorFactor}× that of rounding at those scales{sqnr}"
                : $"dequantizes within NVFP4's error bound of {source.Origin}{sqnr}";
            return;
        }
        var (id, cause) = Diagnose(source, weight);
        check.Fail(id,
            $"{tally.Violations} of {tally.Elements} dequantized values deviate from {source.Origin} by more than NVFP4's error bound " +
            $"(first at [{tally.FirstRow}, {tally.FirstColumn}]: source {Text.Number(tally.FirstSource)}, dequantized {Text.Number(tally.FirstDequantized)}, " +
            $"allowed ±{Text.Number(tally.FirstBound)}). {cause}");
    }

    /// <summary>
    /// Dequantizes an FP8 weight and compares it with its source under <see cref="Fp8ErrorBound"/>, then checks its
    /// weight_scale against the source's amax.
    /// </summary>
    public void CompareFp8(Fp8Module weight, CheckBuilder check)
    {
        string name = weight.Name + ".weight";
        if (!map.TryGet(name, out var source))
        {
            check.Fail(VerificationIds.TensorNotInSource, $"The source has no '{name}' (nor a fused expert tensor it is a part of) for this FP8 weight.");
            return;
        }
        if (!DTypes.IsFloatingSource(source.DType) || source.Shape.Length != 2 || source.Shape[0] != weight.Rows || source.Shape[1] != weight.Cols)
        {
            check.Fail(VerificationIds.ShapeMismatch,
                $"The FP8 weight is [{weight.Rows}, {weight.Cols}] but {source.Origin} is {source.DType} {Text.Shape(source.Shape)}; FP8 keeps the source's shape.");
            return;
        }
        if (!weight.Usable) return;
        var tally = Fp8BoundCheck.Measure(source, weight, stopAtFirstViolation: false, cancellationToken);
        check.RelativeRmsError = tally.RelativeRmsError;
        check.SqnrDb = tally.SqnrDb;
        CheckFp8WeightScale(weight, source, tally.SourceAmax, check);
        if (tally.Violations == 0)
        {
            check.Note = $"dequantizes within FP8's error bound of {source.Origin}" + (tally.SqnrDb is { } sqnr ? $" (SQNR {Text.Number(sqnr)} dB)" : "");
            return;
        }
        var other = map.Confusable(source.Name).FirstOrDefault(o => Fp8BoundCheck.Measure(o, weight, stopAtFirstViolation: true, cancellationToken).Violations == 0);
        check.Fail(other is null ? VerificationIds.QuantizationErrorOutOfBound : VerificationIds.WeightsOfOtherModule,
            $"{tally.Violations} of {tally.Elements} dequantized values deviate from {source.Origin} by more than FP8's error bound " +
            $"(first at [{tally.FirstRow}, {tally.FirstColumn}]: source {Text.Number(tally.FirstSource)}, dequantized {Text.Number(tally.FirstDequantized)}, " +
            $"allowed ±{Text.Number(tally.FirstBound)}). " +
            (other is null
                ? "No known mix-up explains it: the codes or weight_scale are wrong."
                : $"It fits {other.Origin} instead: the weights of another shard or expert were written here."));
    }

    /// <summary>
    /// weight_scale = (float)((double)amax / 448) (ModelOpt <c>get_scaling_factor</c>: a Python division, then an fp32
    /// tensor), amax = max |w| of the module's own weight: FP8 groups are not unified at export, except a fused expert's
    /// gate and up, which one weight quantizer of gate_up_proj[e] covers. An all-zero weight gets amax 1 (ModelOptPS's
    /// guard against ModelOpt's division by zero).
    /// </summary>
    private void CheckFp8WeightScale(Fp8Module weight, SourceSlice source, float amax, CheckBuilder check)
    {
        string over = source.Origin;
        if (source.Tensor.Name != source.Name && ExpertSets.SplitExpert(weight.Name) is { Projection: "gate_proj" or "up_proj" } e)
        {
            string sibling = $"{e.Experts}.{e.Expert}.{(e.Projection == "gate_proj" ? "up_proj" : "gate_proj")}.weight";
            if (map.TryGet(sibling, out var other)) amax = Math.Max(amax, other.Amax());
            over = $"source '{source.Tensor.Name}'[{e.Expert}] (gate and up share one weight quantizer)";
        }
        float expected = (float)((amax == 0 ? 1.0 : amax) / (double)E4M3.MaxValue);
        float stored = weight.WeightScale!.Value;
        if (BitConverter.SingleToUInt32Bits(stored) != BitConverter.SingleToUInt32Bits(expected))
            check.Fail(VerificationIds.Fp8WeightScaleMismatch,
                $"'weight_scale' is {Text.Scale(stored)} but the max |w| of {over} is {Text.Number(amax)}, which gives (float)(amax / 448) = {Text.Scale(expected)}.");
    }

    /// <summary>Tries the known mix-ups in turn; the first reading that fits the bound everywhere names the cause.</summary>
    private (string Id, string Cause) Diagnose(SourceSlice source, QuantizedModule weight)
    {
        if (Fits(source, weight, WeightLayout.NibblesSwapped))
            return (VerificationIds.NibblesSwapped,
                "Read with the two codes of each byte swapped it fits: the even column must be in the low nibble (nvfp4-numerics.md step 6).");
        if (weight.BlockScales.Info.ByteLength <= int.MaxValue && Fits(source, weight, WeightLayout.ScalesTransposed))
            return (VerificationIds.BlockScalesTransposed,
                "Read with the block scales transposed it fits: weight_scale must be row-major [out, in/16], one row per output.");
        foreach (var other in map.Confusable(source.Name))
        {
            if (Fits(other, weight, WeightLayout.Contract))
                return (VerificationIds.WeightsOfOtherModule,
                    $"It fits {other.Origin} instead: the weights of another shard or expert were written here (gate and up swapped, or experts out of order?).");
        }
        return (VerificationIds.QuantizationErrorOutOfBound, "No known mix-up explains it: the codes, the block scales or the global scale are wrong.");
    }

    private bool Fits(SourceSlice source, QuantizedModule weight, WeightLayout layout) =>
        BoundCheck.Measure(source, weight, layout, stopAtFirstViolation: true, cancellationToken).Violations == 0;

    /// <summary>
    /// weight_scale_2 must be the max source |w| over 2688 (nvfp4-numerics.md step 2; either rounding order,
    /// compressed-tensors' reciprocal included) of its scale group: the quantized shards of the merged layers of one
    /// parent that read the same input (checkpoint-contract.md, "Shared scales"). Checked after every member's amax is known.
    /// </summary>
    public void CheckWeightScale2(IReadOnlyList<QuantizedModule> quantized, MergedLayerTable layers, Nvfp4Naming naming, CheckList checks)
    {
        var measured = quantized.Where(q => _sourceAmax.ContainsKey(q.Name)).ToList();
        foreach (var layer in measured.GroupBy(q => layers.Of(q.Name)?.InputGroup ?? q.Name))
        {
            var members = layer.ToList();
            float amax = members.Max(q => _sourceAmax[q.Name]);
            double expected = amax == 0 ? GlobalScale.Reciprocal : amax / (double)GlobalScale.Divisor;
            string over = members.Count > 1 ? $" over {Text.List(members.Select(m => ModuleClassifier.LastComponent(m.Name)).ToList())}" : "";
            foreach (var q in members.Where(q => q.GlobalScale is not null && Math.Abs(q.WeightScale2 - expected) > expected * Math.ScaleB(1.0, -20)))
                checks.Module(q.Name).Fail(VerificationIds.WeightScale2Mismatch,
                    $"'{naming.GlobalScale}' is {Text.Scale(q.GlobalScale!.Value)}, a weight_scale_2 of {Text.Number(q.WeightScale2)}, but the source's max |w|{over} " +
                    $"is {Text.Number(amax)}, which gives amax/2688 = {Text.Number(expected)}.");
        }
    }
}
