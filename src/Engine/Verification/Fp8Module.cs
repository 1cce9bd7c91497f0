using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// A module that holds FP8 per-tensor tensors, as ModelOpt's export writes them (unified_export_hf
/// <c>_export_quantized_weight</c>, quant_utils <c>to_quantized_weight</c>): <c>weight</c> F8_E4M3 [out, in] (the
/// source weight's shape), <c>weight_scale</c> F32 0-d = amax/448, <c>input_scale</c> F32 0-d = activation amax/448,
/// no <c>weight_scale_2</c>. Checked like <see cref="QuantizedModule"/>; <see cref="Usable"/> says whether it can be
/// dequantized (fp32(e4m3 byte) × weight_scale).
/// </summary>
internal sealed class Fp8Module
{
    /// <summary>How <see cref="ModuleCheck.Found"/> starts for a module holding FP8 tensors.</summary>
    public const string FoundPrefix = "FP8";

    private const string WeightName = "weight";
    private const string WeightScaleName = "weight_scale";
    private const string InputScaleName = "input_scale";

    private Fp8Module(ModelModule module, TensorRef weight, int rows, int cols)
    {
        Module = module;
        Weight = weight;
        Rows = rows;
        Cols = cols;
    }

    public ModelModule Module { get; }

    public string Name => Module.Name;

    /// <summary>F8_E4M3 [Rows, Cols].</summary>
    public TensorRef Weight { get; }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>The stored weight_scale, when present and valid.</summary>
    public float? WeightScale { get; private set; }

    /// <summary>The stored input_scale, when present and valid.</summary>
    public float? InputScale { get; private set; }

    /// <summary>True when every tensor has the right dtype and shape and both scales are finite positive numbers.</summary>
    public bool Usable { get; private set; }

    public string Found => $"{FoundPrefix} [{Rows}, {Cols}]";

    /// <summary>True when a module's weight is stored in FP8 (ModelOpt layout only: compressed-tensors NVFP4 never is).</summary>
    public static bool Holds(IReadOnlyDictionary<string, TensorInfo> parameters) =>
        parameters.TryGetValue(WeightName, out var weight) && weight.DType == DType.F8_E4M3;

    /// <summary>Checks an FP8 module's tensors; records every problem on <paramref name="check"/>. Null when the weight is not 2-D.</summary>
    public static Fp8Module? Inspect(ModelModule module, IReadOnlyDictionary<string, TensorRef> tensors, CheckBuilder check)
    {
        var p = module.Parameters;
        TensorRef Ref(string parameter) => tensors[module.Name + "." + parameter];
        foreach (var extra in p.Keys.Where(k => k is not (WeightName or WeightScaleName or InputScaleName or "bias") && !KvCacheScales.IsScale(k)))
            check.Fail(VerificationIds.UnexpectedTensor,
                $"'{extra}' ({p[extra].DType} {p[extra].ShapeText}) is not a tensor of an FP8 per-tensor Linear (weight, weight_scale, input_scale, bias); " +
                "engines fail on parameters they do not know" + (extra == "weight_scale_2" ? " (weight_scale_2 belongs to NVFP4)." : "."));
        int failuresBefore = check.FailureCount;
        var weight = p[WeightName];
        if (weight.Rank != 2 || weight.Shape[0] > int.MaxValue || weight.Shape[1] > int.MaxValue)
        {
            check.Fail(VerificationIds.WrongShape, $"'{WeightName}' is {weight.ShapeText}; an FP8 weight keeps the source's [out, in].");
            return null;
        }
        var result = new Fp8Module(module, Ref(WeightName), (int)weight.Shape[0], (int)weight.Shape[1]);
        result.ScanCodes(check);
        result.WeightScale = ScalarTensor.Read(p, WeightScaleName, [], VerificationIds.MissingWeightScale, check, Ref);
        result.InputScale = ScalarTensor.Read(p, InputScaleName, [], VerificationIds.MissingInputScale, check, Ref);
        QuantizedModule.CheckBias(p, result.Rows, check);
        result.Usable = check.FailureCount == failuresBefore;
        return result;
    }

    /// <summary>0x7F/0xFF are E4M3FN's NaN: ModelOpt's amax/448 scale never produces them, so they mean a broken encoder.</summary>
    private void ScanCodes(CheckBuilder check)
    {
        const int chunk = 1 << 24;
        long nan = 0, first = -1, length = Weight.Info.ByteLength;
        for (long offset = 0; offset < length; offset += chunk)
        {
            using var mapped = Weight.File.Read(Weight.Info, offset, (int)Math.Min(chunk, length - offset));
            var bytes = mapped.Span;
            for (int i = 0; i < bytes.Length; i++)
            {
                if ((bytes[i] & 0x7F) == 0x7F && nan++ == 0) first = offset + i;
            }
        }
        if (nan > 0)
            check.Fail(VerificationIds.NaNFp8Weight,
                $"'{WeightName}' holds {nan} NaN code(s) (E4M3 0x7F/0xFF), first at [{first / Cols}, {first % Cols}]: those weights dequantize to NaN.");
    }
}
