using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// A module that holds NVFP4 tensors, after its tensors were checked against the contract's table (names, dtypes,
/// shapes, scale values). <see cref="Usable"/> says whether the numbers can be trusted enough to dequantize.
/// </summary>
internal sealed class QuantizedModule
{
    private QuantizedModule(ModelModule module, TensorRef packed, TensorRef blockScales, int rows, int cols)
    {
        Module = module;
        Packed = packed;
        BlockScales = blockScales;
        Rows = rows;
        Cols = cols;
    }

    public ModelModule Module { get; }

    public string Name => Module.Name;

    /// <summary>U8 [Rows, Cols/2].</summary>
    public TensorRef Packed { get; }

    /// <summary>F8_E4M3 [Rows, Cols/16].</summary>
    public TensorRef BlockScales { get; }

    /// <summary>Output features.</summary>
    public int Rows { get; }

    /// <summary>Input features (two per packed byte).</summary>
    public int Cols { get; }

    /// <summary>The stored global weight scale (weight_scale_2, or weight_global_scale for compressed-tensors).</summary>
    public float? GlobalScale { get; private set; }

    /// <summary>The stored activation scale (input_scale, or input_global_scale), when present and readable.</summary>
    public float? InputScale { get; private set; }

    /// <summary>The block-scale multiplier in ModelOpt's convention (amax/2688).</summary>
    public double WeightScale2 { get; private set; }

    /// <summary>True when every tensor has the right dtype and shape and every scale is a finite positive number.</summary>
    public bool Usable { get; private set; }

    public string Found => $"{Nvfp4Naming.FoundPrefix} [{Rows}, {Cols}]";

    /// <summary>
    /// Checks a module's tensors against the contract for <paramref name="declared"/>'s layout; records every problem
    /// on <paramref name="check"/>. Returns null when there is no packed weight and block scale to speak of.
    /// </summary>
    public static QuantizedModule? Inspect(ModelModule module, IReadOnlyDictionary<string, TensorRef> tensors,
        DeclaredQuantization declared, bool weightOnly, CheckBuilder check)
    {
        var naming = declared.Naming;
        var p = module.Parameters;
        TensorRef Ref(string parameter) => tensors[module.Name + "." + parameter];

        foreach (var extra in p.Keys.Where(k => k != "bias" && !declared.IsQuantizationTensor(k)))
            check.Fail(VerificationIds.UnexpectedTensor,
                $"'{extra}' ({p[extra].DType} {p[extra].ShapeText}) is not a tensor of an NVFP4 Linear in the {declared.Format} layout; engines fail on parameters they do not know.");
        int failuresBefore = check.FailureCount;
        if (!p.TryGetValue(naming.Packed, out var packed))
        {
            check.Fail(VerificationIds.MissingPackedWeight, $"Holds NVFP4 scales but no '{naming.Packed}' (U8 packed E2M1 weight).");
            return null;
        }
        if (packed.DType != DType.U8)
            check.Fail(VerificationIds.WrongDType, $"'{naming.Packed}' is {packed.DType}; an NVFP4 weight is U8, two E2M1 codes a byte.");
        if (packed.Rank != 2 || packed.Shape[1] % 8 != 0 || packed.Shape[0] > int.MaxValue || packed.Shape[1] * 2 > int.MaxValue)
        {
            check.Fail(VerificationIds.WrongShape, $"'{naming.Packed}' is {packed.ShapeText}; an NVFP4 weight is [out, in/2] with in a multiple of 16.");
            return null;
        }
        int rows = (int)packed.Shape[0], cols = (int)packed.Shape[1] * 2;
        if (!p.TryGetValue(naming.BlockScale, out var scales))
        {
            check.Fail(VerificationIds.MissingWeightScale, $"Has no '{naming.BlockScale}' (F8_E4M3 [{rows}, {cols / 16}] block scales).");
            return null;
        }
        var result = new QuantizedModule(module, Ref(naming.Packed), Ref(naming.BlockScale), rows, cols);
        if (result.CheckBlockScaleTensor(scales, naming, check)) result.ScanBlockScales(naming, check);
        result.GlobalScale = ScalarTensor.Read(p, naming.GlobalScale, naming.ScalarShape, VerificationIds.MissingWeightScale2, check, Ref);
        if (weightOnly)
        {
            if (p.ContainsKey(naming.InputScale))
                check.Fail(VerificationIds.UnexpectedInputScale,
                    $"Has '{naming.InputScale}' but the config declares it weight-only ({DeclaredQuantization.W4A16}); weight-only exports write no activation scales.");
        }
        else
        {
            result.InputScale = ScalarTensor.Read(p, naming.InputScale, naming.ScalarShape, VerificationIds.MissingInputScale, check, Ref);
        }
        CheckBias(p, rows, check);
        if (result.GlobalScale is { } g) result.WeightScale2 = naming.WeightScale2(g);
        result.Usable = check.FailureCount == failuresBefore && result.GlobalScale is not null;
        return result;
    }

    /// <summary>A quantized Linear's bias stays in the source's float dtype, one value per output.</summary>
    public static void CheckBias(IReadOnlyDictionary<string, TensorInfo> parameters, long rows, CheckBuilder check)
    {
        if (!parameters.TryGetValue("bias", out var bias)) return;
        if (!DTypes.IsFloatingSource(bias.DType))
            check.Fail(VerificationIds.WrongDType, $"'bias' is {bias.DType}; biases stay in the source's float dtype.");
        if (bias.Rank != 1 || bias.Shape[0] != rows)
            check.Fail(VerificationIds.WrongShape, $"'bias' is {bias.ShapeText}; the weight has {rows} rows.");
    }

    private bool CheckBlockScaleTensor(TensorInfo scales, Nvfp4Naming naming, CheckBuilder check)
    {
        bool ok = true;
        if (scales.DType != DType.F8_E4M3)
        {
            check.Fail(VerificationIds.WrongDType, $"'{naming.BlockScale}' is {scales.DType}; block scales are F8_E4M3.");
            ok = false;
        }
        if (scales.Rank != 2 || scales.Shape[0] != Rows || scales.Shape[1] != Cols / 16)
        {
            check.Fail(VerificationIds.WrongShape,
                $"'{naming.BlockScale}' is {scales.ShapeText}; for {Rows} rows and {Cols} input features it must be [{Rows}, {Cols / 16}] (one scale per 16 inputs, row-major).");
            ok = false;
        }
        return ok;
    }

    /// <summary>E4M3 block scales are positive and finite: 0x7F/0xFF are NaN, and the spec clamps every scale to ≥ 2^-9.</summary>
    private void ScanBlockScales(Nvfp4Naming naming, CheckBuilder check)
    {
        const int chunk = 1 << 24;
        long nan = 0, invalid = 0, firstNan = -1, firstInvalid = -1;
        long length = BlockScales.Info.ByteLength;
        for (long offset = 0; offset < length; offset += chunk)
        {
            using var mapped = BlockScales.File.Read(BlockScales.Info, offset, (int)Math.Min(chunk, length - offset));
            var bytes = mapped.Span;
            for (int i = 0; i < bytes.Length; i++)
            {
                byte b = bytes[i];
                if ((b & 0x7F) == 0x7F)
                {
                    if (nan++ == 0) firstNan = offset + i;
                }
                else if (b == 0 || b >= 0x80)
                {
                    if (invalid++ == 0) firstInvalid = offset + i;
                }
            }
        }
        int blocks = Cols / 16;
        if (nan > 0)
            check.Fail(VerificationIds.NaNBlockScale,
                $"'{naming.BlockScale}' holds {nan} NaN block scale(s) (E4M3 0x7F/0xFF), first at [{firstNan / blocks}, {firstNan % blocks}]: those blocks dequantize to NaN.");
        if (invalid > 0)
            check.Fail(VerificationIds.InvalidBlockScale,
                $"'{naming.BlockScale}' holds {invalid} zero or negative block scale(s), first at [{firstInvalid / blocks}, {firstInvalid % blocks}]; NVFP4 block scales are clamped to [2^-9, 448].");
    }
}
