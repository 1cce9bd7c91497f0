using ModelOptPS.Engine.Checkpoint;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Where the text model's tensors are: prefix <c>model.</c>, or <c>model.language_model.</c> in the Qwen3.5 multimodal
/// wrapper (decided from the key set, as the checkpoint may be either). The vision tower and the MTP head are never read.
/// </summary>
internal sealed record TextLayout(string Prefix, string LmHeadWeight)
{
    private static readonly string[] Prefixes = ["model.", "model.language_model.", "language_model.model."];

    public string EmbedTokens => Prefix + "embed_tokens.weight";

    public string FinalNorm => Prefix + "norm.weight";

    public string Layer(int index) => $"{Prefix}layers.{index}.";

    public static TextLayout Detect(CheckpointReader checkpoint)
    {
        string? prefix = Prefixes.FirstOrDefault(p => checkpoint.Tensors.ContainsKey(p + "embed_tokens.weight"))
            ?? throw ExecutionErrors.NotSupported(checkpoint.Folder,
                $"no text embedding table ({string.Join(", ", Prefixes.Select(p => p + "embed_tokens.weight"))}).");
        if (checkpoint.Tensors.ContainsKey("lm_head.weight")) return new TextLayout(prefix, "lm_head.weight");
        if (checkpoint.Config.TieWordEmbeddings) return new TextLayout(prefix, prefix + "embed_tokens.weight");
        throw ExecutionErrors.NotSupported(checkpoint.Folder, "there is no lm_head.weight and tie_word_embeddings is false.");
    }
}
