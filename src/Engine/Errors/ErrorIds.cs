namespace ModelOptPS.Engine.Errors;

/// <summary>
/// The stable error ids of checkpoint reading. Runbooks and tests match on these strings, so they never change
/// meaning; each one names one thing that can be wrong.
/// </summary>
public static class ErrorIds
{
    public const string CheckpointFolderNotFound = nameof(CheckpointFolderNotFound);
    public const string ConfigNotFound = nameof(ConfigNotFound);
    public const string ConfigInvalid = nameof(ConfigInvalid);
    public const string NoWeightFiles = nameof(NoWeightFiles);
    public const string IndexInvalid = nameof(IndexInvalid);
    public const string IndexShardMissing = nameof(IndexShardMissing);
    public const string IndexHeaderMismatch = nameof(IndexHeaderMismatch);
    public const string DuplicateTensorName = nameof(DuplicateTensorName);
    public const string SafetensorsTruncated = nameof(SafetensorsTruncated);
    public const string SafetensorsHeaderTooLong = nameof(SafetensorsHeaderTooLong);
    public const string SafetensorsHeaderInvalid = nameof(SafetensorsHeaderInvalid);
    public const string SafetensorsUnknownDType = nameof(SafetensorsUnknownDType);
    public const string SafetensorsShapeMismatch = nameof(SafetensorsShapeMismatch);
    public const string SafetensorsSpanOutOfFile = nameof(SafetensorsSpanOutOfFile);
    public const string SafetensorsOverlappingSpans = nameof(SafetensorsOverlappingSpans);
    public const string SafetensorsWriteOrder = nameof(SafetensorsWriteOrder);
    public const string TensorNotFound = nameof(TensorNotFound);

    /// <summary>Tensor data was read from a model (checkpoint) after it was disposed.</summary>
    public const string ModelDisposed = nameof(ModelDisposed);
}
