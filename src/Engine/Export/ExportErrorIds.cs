namespace ModelOptPS.Engine.Export;

/// <summary>Stable error ids of the export (runbooks and tests match on these strings).</summary>
public static class ExportErrorIds
{
    /// <summary>-Force was given, but the folder holds something that is not a previous export of this tool.</summary>
    public const string TargetNotAnExport = nameof(TargetNotAnExport);

    /// <summary>The file system of the target ran out of space (or quota) while the export was written.</summary>
    public const string ExportDiskFull = nameof(ExportDiskFull);

    /// <summary>Any other failure to write, rename or remove in the target's folder.</summary>
    public const string ExportWriteFailed = nameof(ExportWriteFailed);

    /// <summary>The forward engine cannot plan the model, so the Linears that must share scales are not known.</summary>
    public const string InputSharingUnknown = nameof(InputSharingUnknown);

    /// <summary>compressed-tensors was asked for a plan it cannot express here: FP8 modules, mixed formats or a quantized KV cache.</summary>
    public const string CompressedTensorsFormatUnsupported = nameof(CompressedTensorsFormatUnsupported);

    /// <summary>A scaled FP8 KV cache whose k/v quantizer has no positive amax from calibration (nor a pinned one).</summary>
    public const string KvCacheAmaxMissing = nameof(KvCacheAmaxMissing);
}
