using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Numerics;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// The k/v scales of an FP8 KV cache in scaled mode, as ModelOpt's <c>postprocess_state_dict</c> writes them
/// (quant_utils.py, <c>_KV_CACHE_REPLACEMENTS</c>): <c>&lt;attn&gt;.k_bmm_quantizer._amax</c> becomes
/// <c>&lt;attn&gt;.k_proj.k_scale</c> = amax / 448 (F32, 0-d), <c>v_bmm_quantizer</c> likewise <c>v_proj.v_scale</c>, for
/// every attention block whose quantizer is enabled. The cast mode (amax pinned to 448) writes none: engines use 1.0.
/// </summary>
public static class KvCacheScales
{
    public static IReadOnlyList<OutputTensor> For(HFModel model, QuantPlan plan, GlobalScaleOrder order)
    {
        if (plan.KvCache.Mode != KvCacheMode.Fp8Scaled) return [];
        var amaxes = ActivationAmaxes.Of(plan, model.Statistics);
        var scales = plan.KvCache.QuantizedLayers
            .SelectMany(l => new[] { (Name: l.KeyScaleName, Quantizer: l.Key), (Name: l.ValueScaleName, Quantizer: l.Value) })
            .Where(s => s.Quantizer.Enabled)
            .Select(s => (s.Name, Quantizer: s.Quantizer.Name, Found: amaxes.TryGet(s.Quantizer.Name, out float amax), Amax: amax))
            .ToList();
        var missing = scales.Where(s => !s.Found || s.Amax == 0f).Select(s => s.Quantizer).ToList();
        if (missing.Count > 0)
            throw new ModelOptException(ExportErrorIds.KvCacheAmaxMissing, ErrorKind.InvalidData,
                $"No positive calibrated amax for KV-cache quantizer(s) {string.Join(", ", missing.Take(4))}" +
                (missing.Count > 4 ? $" and {missing.Count - 4} more" : "") +
                "; the scaled FP8 KV cache writes k_scale/v_scale = amax / 448 from them, and 0 would make engines divide by zero. " +
                "Run Invoke-Calibration on data that reaches these attention layers, or use the cast mode (Set-QuantConfig -KvCache Fp8Cast), which writes no scales.",
                model.Path);
        return scales.Select(s => OutputTensor.Scalar(s.Name, Fp8.ActivationScale(s.Amax, s.Quantizer, order), oneElementVector: false)).ToList();
    }
}
