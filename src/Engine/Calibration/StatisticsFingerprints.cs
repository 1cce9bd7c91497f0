using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// Cheap identities that statistics files carry so a merge can tell they belong together. The model's: SHA-256 of its
/// config.json (as parsed) and of every tensor's name, dtype and shape (headers only, no weight bytes: a 70 GB checkpoint
/// fingerprints in milliseconds). The plan's: SHA-256 of a canonical listing of its decisions — every module's
/// decision, every quantizer's state and format, expert units, the KV cache and the weight algorithm's settings.
/// </summary>
public static class StatisticsFingerprints
{
    public static string Model(HFModel model)
    {
        var text = new StringBuilder();
        text.Append(model.Config.Root.ToJsonString()).Append('\n');
        foreach (var (name, tensor) in model.Checkpoint.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append(name).Append(' ').Append(tensor.Info.DType).Append(' ').Append(tensor.Info.ShapeText).Append('\n');
        return Hash(text);
    }

    public static string Plan(QuantPlan plan)
    {
        var text = new StringBuilder();
        var algorithm = plan.Algorithm;
        text.Append(CultureInfo.InvariantCulture, $"algorithm {algorithm.Weights} {algorithm.PercDamp:R} {algorithm.GptqBlockSize}\n");
        foreach (var module in plan.Modules.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"module {module.Name} {module.Decision}\n");
            foreach (var quantizer in module.Quantizers) Append(text, quantizer);
            foreach (var unit in module.ExpertUnits)
            {
                text.Append(CultureInfo.InvariantCulture, $"unit {unit.Expert} {unit.Projection} {unit.Decision}\n");
                Append(text, unit.Weight);
                Append(text, unit.Input);
            }
        }
        text.Append(CultureInfo.InvariantCulture, $"kv {plan.KvCache.Mode}\n");
        foreach (var layer in plan.KvCache.Layers)
        {
            Append(text, layer.Key);
            Append(text, layer.Value);
        }
        return Hash(text);
    }

    private static void Append(StringBuilder text, QuantizerState quantizer) =>
        text.Append(quantizer.Name).Append(' ').Append(quantizer.Enabled).Append(' ').Append(quantizer.Format?.ToJson().ToJsonString() ?? "-")
            .Append(' ').Append(quantizer.Format?.OtherBlockAxes ?? "-").Append('\n');

    private static string Hash(StringBuilder text) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
}
