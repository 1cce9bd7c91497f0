using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Data;

/// <summary>The token sequences a run reads, and where they came from (for reports).</summary>
public sealed record TokenSequenceSet(IReadOnlyList<long[]> Sequences, string Description);

/// <summary>
/// The one way calibration and quality measurement get their text: the built-in corpus's split, or a user's file
/// (text, JSONL with chat messages rendered like the model's template, Parquet), tokenized with the model's tokenizer
/// and cut into sequences.
/// </summary>
public static class TokenSequences
{
    /// <summary>More tokens than one array holds (NumSamples × SequenceLength).</summary>
    public const string TooManyTokens = nameof(TooManyTokens);

    public const string NotEnoughCalibrationData = nameof(NotEnoughCalibrationData);

    public const string NotEnoughEvaluationData = nameof(NotEnoughEvaluationData);

    /// <summary>
    /// Sequences of <paramref name="datasetPath"/>, or of the built-in corpus's <paramref name="split"/> when it is null.
    /// The split also names the purpose: <see cref="CorpusSplit.Train"/> calibrates, <see cref="CorpusSplit.HeldOut"/>
    /// evaluates; no sequence at all is that purpose's not-enough-data error.
    /// </summary>
    public static TokenSequenceSet Build(string modelFolder, string? datasetPath, string? column, SequenceOptions options, CorpusSplit split)
    {
        if ((long)options.NumSamples * options.SequenceLength > Array.MaxLength)
            throw new ModelOptException(TooManyTokens, ErrorKind.InvalidArgument,
                $"{options.NumSamples} sequences of {options.SequenceLength} tokens are {(long)options.NumSamples * options.SequenceLength:N0} tokens, " +
                $"more than one run holds ({Array.MaxLength:N0}); lower -NumSamples or -SequenceLength.", datasetPath);
        using var tokenizer = TextTokenizer.Load(modelFolder);
        var documents = datasetPath is null
            ? CalibrationDocuments.BuiltIn(split).ToList()
            : CalibrationDocuments.FromFile(datasetPath, column, ChatRenderer.Detect(tokenizer.ChatTemplate));
        string description = datasetPath is null
            ? $"the built-in corpus ({(split == CorpusSplit.Train ? "training" : "held-out")} split)"
            : $"'{datasetPath}'";
        var sequences = CalibrationSequences.Build(documents, tokenizer, options);
        if (sequences.Count == 0)
            throw new ModelOptException(split == CorpusSplit.Train ? NotEnoughCalibrationData : NotEnoughEvaluationData, ErrorKind.InvalidData,
                $"{description} has fewer than {options.SequenceLength} tokens ({documents.Count} documents); give more text or a shorter -SequenceLength.",
                datasetPath ?? modelFolder);
        return new TokenSequenceSet(sequences, description);
    }
}
