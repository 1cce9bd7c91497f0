using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Errors;
using Parquet;

namespace ModelOptPS.Engine.Data;

/// <summary>One calibration document and where it came from.</summary>
public sealed record CalibrationDocument(string Text, string Source);

/// <summary>Which part of the built-in corpus to read.</summary>
public enum CorpusSplit
{
    /// <summary>For calibration and training.</summary>
    Train,

    /// <summary>Held out for evaluation; calibration never reads it.</summary>
    HeldOut,
}

/// <summary>
/// Calibration text: the built-in corpus (src/Engine/Corpus), plain text files (one document each), JSONL (a
/// <c>text</c> field, or chat <c>messages</c> rendered like the model's chat template), and Parquet files of Hugging
/// Face datasets (a string column chosen by name).
/// </summary>
public static class CalibrationDocuments
{
    public const string DefaultColumn = "text";

    public static IEnumerable<CalibrationDocument> BuiltIn(CorpusSplit split)
    {
        using var stream = typeof(CalibrationDocuments).Assembly.GetManifestResourceStream("ModelOptPS.Corpus.jsonl")
            ?? throw new InvalidOperationException("The built-in corpus is missing from the engine assembly.");
        using var reader = new StreamReader(stream);
        string wanted = split == CorpusSplit.Train ? "train" : "heldout";
        while (reader.ReadLine() is { } line)
        {
            var doc = JsonNode.Parse(line)!;
            if (doc["split"]!.GetValue<string>() == wanted)
                yield return new CalibrationDocument(doc["text"]!.GetValue<string>(), "built-in:" + doc["source"]!.GetValue<string>());
        }
    }

    /// <summary>Documents of a user file, by extension: .jsonl/.json lines, .parquet, anything else as text.</summary>
    public static IReadOnlyList<CalibrationDocument> FromFile(string path, string? column, ChatRenderer.Format chat)
    {
        if (!File.Exists(path))
            throw new ModelOptException("DatasetNotFound", ErrorKind.ObjectNotFound, $"The calibration data file '{path}' does not exist.", path);
        return System.IO.Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" => Jsonl(path, column ?? DefaultColumn, chat).ToList(),
            ".parquet" => Parquet(path, column ?? DefaultColumn),
            _ => [new CalibrationDocument(File.ReadAllText(path), path)],
        };
    }

    private static IEnumerable<CalibrationDocument> Jsonl(string path, string column, ChatRenderer.Format chat)
    {
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? record;
            try { record = JsonNode.Parse(line); }
            catch (JsonException ex)
            {
                throw Invalid(path, $"line {lineNumber} is not valid JSON ({ex.Message})", ex);
            }
            if (record is not JsonObject fields)
                throw Invalid(path, $"line {lineNumber} is not a JSON object (it is {Describe(record)})");
            if (fields[column] is JsonValue text && text.TryGetValue(out string? s))
                yield return new CalibrationDocument(s, $"{path}:{lineNumber}");
            else if (fields["messages"] is JsonArray messages)
                yield return new CalibrationDocument(ChatRenderer.Render(Messages(path, lineNumber, messages), chat), $"{path}:{lineNumber}");
            else
                throw Invalid(path, $"line {lineNumber} has neither a \"{column}\" string nor a \"messages\" list");
        }
    }

    private static List<ChatMessage> Messages(string path, int line, JsonArray messages) =>
        messages.Select((m, i) => m is JsonObject o && o["role"] is JsonValue r && r.TryGetValue(out string? role)
                                  && o["content"] is JsonValue c && c.TryGetValue(out string? content)
                ? new ChatMessage(role, content)
                : throw Invalid(path, $"line {line}: message {i + 1} needs string \"role\" and \"content\" fields"))
            .ToList();

    private static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonArray => "an array",
        _ => $"a {node.GetValueKind().ToString().ToLowerInvariant()}",
    };

    private static List<CalibrationDocument> Parquet(string path, string column)
    {
        try
        {
            return ReadParquetColumn(path, column).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is not ModelOptException and (IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException))
        {
            throw Invalid(path, $"cannot be read as Parquet ({ex.Message})", ex);
        }
    }

    private static async Task<List<CalibrationDocument>> ReadParquetColumn(string path, string column)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var fields = reader.Schema.GetDataFields();
        var field = fields.FirstOrDefault(f => f.Name == column)
            ?? throw new ModelOptException("DatasetColumnNotFound", ErrorKind.InvalidArgument,
                $"The Parquet file '{path}' has no column '{column}'. Columns: {string.Join(", ", fields.Select(f => f.Name))}.", path);
        // Parquet.Net describes UTF-8 byte-array columns as string or ReadOnlyMemory<char>.
        if (field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>))
            throw new ModelOptException("DatasetColumnNotText", ErrorKind.InvalidArgument,
                $"Column '{column}' of '{path}' holds {field.ClrType.Name}, not text.", path);
        var documents = new List<CalibrationDocument>();
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var values = new string?[group.RowCount];
            await group.ReadAsync(field, values.AsMemory(), null);
            for (int row = 0; row < values.Length; row++)
            {
                if (!string.IsNullOrEmpty(values[row])) documents.Add(new CalibrationDocument(values[row]!, $"{path}:group {g} row {row}"));
            }
        }
        return documents;
    }

    private static ModelOptException Invalid(string path, string what, Exception? inner = null) =>
        new("DatasetInvalid", ErrorKind.InvalidData, $"The calibration data file '{path}' {what}.", path, inner);
}
