using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Execution;

/// <summary>The stable error ids of model execution, and the exceptions that carry them.</summary>
public static class ExecutionErrors
{
    public const string NonFiniteActivation = nameof(NonFiniteActivation);
    public const string ForwardNotSupported = nameof(ForwardNotSupported);
    public const string DeviceNotAvailable = nameof(DeviceNotAvailable);
    public const string TokenOutOfRange = nameof(TokenOutOfRange);
    public const string ChunkTooLarge = nameof(ChunkTooLarge);

    /// <summary>The tokens run through a layer at once (-BatchSize × -SequenceLength) need more than one array holds.</summary>
    internal static ModelOptException TooLarge(string what) =>
        new(ChunkTooLarge, ErrorKind.InvalidArgument,
            $"{what}, more than one array holds ({Array.MaxLength:N0}); lower -BatchSize or -SequenceLength.");

    internal static ModelOptException NotSupported(string folder, string what) =>
        new(ForwardNotSupported, ErrorKind.NotImplemented, $"ModelOptPS cannot run this model's forward pass: {what}", folder);

    internal static ModelOptException NonFinite(string folder, string where, string module) =>
        new(NonFiniteActivation, ErrorKind.InvalidData,
            $"The input of {module} ({where}) holds NaN or Inf. The weights or the input tokens drive the activations out of " +
            "range there; check the checkpoint's values, or run in float32 if running in bfloat16.", folder);
}
