using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.TrainSample.Model;
using static TorchSharp.torch;

namespace ModelOptPS.TrainSample;

/// <summary>Writes the trained weights as one bf16 model.safetensors under the Hugging Face Qwen3-MoE names.</summary>
internal static class SampleCheckpoint
{
    /// <summary>Rounds the float32 master weights to bf16 in place, so evaluation after this sees the shipped weights.</summary>
    public static void RoundToBFloat16(Qwen3MoeForCausalLM model)
    {
        using var noGrad = no_grad();
        foreach (var parameter in model.parameters()) parameter.copy_(parameter.to(ScalarType.BFloat16).to(ScalarType.Float32));
    }

    public static void Write(string folder, Qwen3MoeForCausalLM model, SampleShape shape)
    {
        var parameters = model.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal).ToList();
        var expected = ExpectedNames(shape).Order(StringComparer.Ordinal).ToList();
        if (!parameters.Select(p => p.name).SequenceEqual(expected))
            throw new InvalidOperationException("The model's parameter names differ from a Qwen3-MoE checkpoint's: " +
                string.Join(", ", parameters.Select(p => p.name).Except(expected).Take(5)));
        string path = Path.Combine(folder, "model.safetensors");
        File.Delete(path);
        var specs = parameters.Select(p => new TensorSpec(p.name, DType.BF16, p.parameter.shape)).ToList();
        using var writer = new CheckpointWriter(folder, specs);
        foreach (var (name, parameter) in parameters)
        {
            using var bf16 = parameter.detach().to(ScalarType.BFloat16).contiguous();
            writer.WriteTensor(name, bf16.bytes);
        }
        writer.Complete();
    }

    /// <summary>The tensor names of a Qwen3-MoE checkpoint of this shape (architectures.md §3.1-3.2), written out independently of the modules.</summary>
    private static IEnumerable<string> ExpectedNames(SampleShape shape)
    {
        yield return "model.embed_tokens.weight";
        yield return "model.norm.weight";
        yield return "lm_head.weight";
        for (int l = 0; l < shape.Layers; l++)
        {
            string layer = $"model.layers.{l}.";
            foreach (string p in new[] { "q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm" }) yield return $"{layer}self_attn.{p}.weight";
            yield return layer + "input_layernorm.weight";
            yield return layer + "post_attention_layernorm.weight";
            yield return layer + "mlp.gate.weight";
            for (int e = 0; e < shape.Experts; e++)
            {
                foreach (string p in new[] { "gate_proj", "up_proj", "down_proj" }) yield return $"{layer}mlp.experts.{e}.{p}.weight";
            }
        }
    }
}
