using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// One weight quantized by GPTQ, in the NVFP4 checkpoint layout: <see cref="Packed"/> uint8 [rows, cols/2] (even column
/// in the low nibble), <see cref="BlockScales"/> E4M3 [rows, cols/16], <see cref="WeightScale2"/>. The block scales are
/// the max-calibrated ones of the original weight (ModelOpt's static quantizer); GPTQ only chooses the codes.
/// </summary>
public sealed class GptqSolution
{
    internal GptqSolution(string name, int rows, int cols, byte[] packed, byte[] blockScales, float weightScale2, float globalAmax,
        GptqErrors errors, int deadColumns, bool hessianFallback, IReadOnlyList<string> warnings)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
        Packed = packed;
        BlockScales = blockScales;
        WeightScale2 = weightScale2;
        GlobalAmax = globalAmax;
        Errors = errors;
        DeadColumns = deadColumns;
        HessianFallback = hessianFallback;
        Warnings = warnings;
    }

    public string Name { get; }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>E2M1 codes, two per byte: [rows, cols/2].</summary>
    public byte[] Packed { get; }

    /// <summary>E4M3 block scales: [rows, cols/16].</summary>
    public byte[] BlockScales { get; }

    /// <summary><c>GlobalScale.ForWeight(GlobalAmax)</c> (CUDA order).</summary>
    public float WeightScale2 { get; }

    /// <summary>The group amax the scales derive from.</summary>
    public float GlobalAmax { get; }

    /// <summary>Hessian-weighted errors of this solution and of max quantization, for reports.</summary>
    public GptqErrors Errors { get; }

    /// <summary>Input columns whose weights were all zero (ModelOpt sets their Hessian row/column to the identity).</summary>
    public int DeadColumns { get; }

    /// <summary>True when the damped Hessian was not positive definite and the identity was used (then GPTQ = round to nearest).</summary>
    public bool HessianFallback { get; }

    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The dequantized weight [rows, cols] in fp32 (<c>E2M1[code] × fl32(fp32(scale) × weight_scale_2)</c>).</summary>
    public float[] Dequantize()
    {
        var values = new float[(long)Rows * Cols];
        Nvfp4.Dequantize(Packed, BlockScales, WeightScale2, Rows, Cols, values);
        return values;
    }
}

/// <summary>
/// ModelOpt's GPTQ report number (<c>GPTQHelper._print_mse_error</c>): the relative Hessian-weighted error
/// <c>mean(ΔH∘Δ) / mean(WH∘W)</c> with Δ = Ŵ − W, for the GPTQ codes and for round-to-nearest with the same block
/// scales (max calibration), so a report can show what GPTQ gained. With H = XᵀX/N, <c>Σ ΔH∘Δ = ‖XΔᵀ‖²/N</c>, the layer-output error.
/// </summary>
public sealed record GptqErrors(double Gptq, double Max);
