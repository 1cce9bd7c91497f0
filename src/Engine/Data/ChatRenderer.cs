namespace ModelOptPS.Engine.Data;

/// <summary>A chat message of a JSONL calibration record (<c>{"messages": [{"role", "content"}]}</c>).</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// Renders chat messages as the model's chat template would. The templates are Jinja programs; rather than run
/// arbitrary Jinja, this recognises the three formats the supported families use by their markers — ChatML (Qwen:
/// <c>&lt;|im_start|&gt;</c>), Llama 3 (<c>&lt;|start_header_id|&gt;</c>) and Mistral/Mixtral (<c>[INST]</c>) — and
/// joins messages plainly (<c>role: content</c>) when there is no template or it is none of these.
/// </summary>
public static class ChatRenderer
{
    public enum Format
    {
        Plain,
        ChatMl,
        Llama3,
        Mistral,
    }

    public static Format Detect(string? template) => template switch
    {
        null => Format.Plain,
        _ when template.Contains("<|im_start|>", StringComparison.Ordinal) => Format.ChatMl,
        _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => Format.Llama3,
        _ when template.Contains("[INST]", StringComparison.Ordinal) => Format.Mistral,
        _ => Format.Plain,
    };

    public static string Render(IReadOnlyList<ChatMessage> messages, Format format) => format switch
    {
        Format.ChatMl => string.Concat(messages.Select(m => $"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n")),
        Format.Llama3 => "<|begin_of_text|>" + string.Concat(messages.Select(m => $"<|start_header_id|>{m.Role}<|end_header_id|>\n\n{m.Content.Trim()}<|eot_id|>")),
        Format.Mistral => "<s>" + string.Concat(messages.Select(m => m.Role == "assistant" ? $" {m.Content}</s>" : $"[INST] {m.Content} [/INST]")),
        _ => string.Join("\n", messages.Select(m => $"{m.Role}: {m.Content}")),
    };
}
