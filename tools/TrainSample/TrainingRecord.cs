using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Text;

namespace ModelOptPS.TrainSample;

/// <summary>training.json: how the shipped weights were made and how well they predict held-out text.</summary>
internal static class TrainingRecord
{
    public sealed record Inputs(
        string Command,
        SampleShape Shape,
        TrainingSettings Settings,
        BpeModel Tokenizer,
        long TrainTokens,
        long HeldOutTokens,
        long TrainBytes,
        TrainingLog Log,
        EvaluationResult MasterHeldOut,
        EvaluationResult ShippedHeldOut,
        TimeSpan TokenizerTime,
        TimeSpan TotalTime,
        string LibTorchVersion,
        string TorchSharpVersion);

    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>[step, loss] pairs.</summary>
    private static JsonArray Pairs(List<double[]> points) => new(points.Select(p => (JsonNode)new JsonArray(p[0], p[1])).ToArray());

    public static JsonObject Build(Inputs r) => new()
    {
        ["command"] = r.Command,
        ["seed"] = r.Settings.Seed,
        ["data"] = new JsonObject
        {
            ["corpus"] = "built-in corpus (src/Engine/Corpus/corpus.jsonl): train split for the tokenizer and the model, held-out split for evaluation only",
            ["packing"] = "documents in corpus order, each followed by <|endoftext|>, cut into windows of sequence_length + 1 tokens (next-token targets); each epoch after the first starts at a seeded offset and shuffles the windows",
            ["train_tokens"] = r.TrainTokens,
            ["train_bytes"] = r.TrainBytes,
            ["heldout_tokens"] = r.HeldOutTokens,
        },
        ["tokenizer"] = new JsonObject
        {
            ["type"] = "byte-level BPE (ModelOptPS.Engine.Text.BpeTrainer), Qwen2 pre-tokenization regex, NFC",
            ["bpe_tokens"] = r.Tokenizer.Vocabulary.Count,
            ["merges"] = r.Tokenizer.Merges.Count,
            ["special_tokens"] = new JsonArray(SampleTokenizer.SpecialTokens.Select(s => (JsonNode)s).ToArray()),
            ["bytes_per_token"] = Math.Round((double)r.TrainBytes / r.TrainTokens, 3),
        },
        ["model"] = JsonSerializer.SerializeToNode(r.Shape, SnakeCase),
        ["settings"] = JsonSerializer.SerializeToNode(r.Settings, SnakeCase),
        ["optimizer"] = "AdamW (weight decay on matrices only), linear warm-up then cosine decay, global gradient-norm clipping; float32 master weights, saved as bf16",
        ["loss"] = "cross-entropy + router_aux_loss_coef * load_balancing_loss (transformers' Qwen3MoeForCausalLM with output_router_logits)",
        ["training"] = new JsonObject
        {
            ["epochs_started"] = r.Log.Epochs,
            ["tokens_seen"] = (long)r.Settings.Steps * r.Settings.BatchSize * r.Settings.SequenceLength,
            ["final_train_loss"] = Math.Round(r.Log.FinalTrainLoss, 4),
            ["final_train_loss_note"] = $"mean cross-entropy of the last {r.Settings.LogEvery} steps",
            ["final_aux_loss"] = Math.Round(r.Log.FinalAuxLoss, 4),
            ["loss_curve"] = Pairs(r.Log.Curve),
            ["heldout_loss_curve"] = Pairs(r.Log.HeldOutCurve),
            ["seconds"] = Math.Round(r.Log.Elapsed.TotalSeconds, 1),
        },
        ["heldout"] = new JsonObject
        {
            ["loss"] = Math.Round(r.ShippedHeldOut.Loss, 4),
            ["perplexity"] = Math.Round(r.ShippedHeldOut.Perplexity, 3),
            ["note"] = "the shipped bf16 weights computed in float32, over every held-out token; windows of sequence_length, packed like the train split",
            ["tokens"] = r.ShippedHeldOut.Tokens,
            ["fp32_master_loss"] = Math.Round(r.MasterHeldOut.Loss, 4),
            ["fp32_master_perplexity"] = Math.Round(r.MasterHeldOut.Perplexity, 3),
            ["expert_share_per_layer"] = new JsonArray(r.ShippedHeldOut.ExpertShare
                .Select(layer => (JsonNode)new JsonArray(layer.Select(s => (JsonNode)Math.Round(s, 4)).ToArray())).ToArray()),
        },
        ["wall_time_seconds"] = new JsonObject
        {
            ["tokenizer"] = Math.Round(r.TokenizerTime.TotalSeconds, 1),
            ["training"] = Math.Round(r.Log.Elapsed.TotalSeconds, 1),
            ["total"] = Math.Round(r.TotalTime.TotalSeconds, 1),
        },
        ["machine"] = new JsonObject
        {
            ["cpu_cores"] = Environment.ProcessorCount,
            ["torch_threads"] = r.Settings.Threads,
            ["torchsharp"] = r.TorchSharpVersion,
            ["libtorch"] = r.LibTorchVersion,
        },
    };
}
