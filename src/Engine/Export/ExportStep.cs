namespace ModelOptPS.Engine.Export;

/// <summary>
/// The points of an export where the file system has just changed. The fault-injection tests stop the process at
/// each of them (through <see cref="ExportOptions.StepReached"/>) to prove that no point loses or fakes an export.
/// </summary>
internal enum ExportStep
{
    StagingCreated,
    TensorWritten,
    ShardsComplete,
    ConfigsWritten,
    FileCopied,
    ManifestWritten,
    TargetMovedAside,
    MovedIntoPlace,
    PreviousRemoved,
}
