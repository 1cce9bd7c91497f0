using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Quality;

/// <summary>
/// The quantized forms hold a weight (or one NVFP4 unit of it) in one managed float array, indexed by int; a larger
/// weight is an error naming it, never an overflowed length or offset.
/// </summary>
internal static class WeightArrays
{
    public const string TensorTooLarge = nameof(TensorTooLarge);

    /// <summary>The element count of <paramref name="shape"/>, or <see cref="TensorTooLarge"/> when one array cannot hold it.</summary>
    public static int Length(string tensor, params ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (long dim in shape)
        {
            if (dim != 0 && count > Array.MaxLength / dim)
                throw new ModelOptException(TensorTooLarge, ErrorKind.NotImplemented,
                    $"'{tensor}' [{string.Join(", ", shape.ToArray())}] has more elements than quality measurement holds in one array " +
                    $"({Array.MaxLength:N0}); measure a model with smaller tensors, or check the export with Test-QuantFormat instead.");
            count *= dim;
        }
        return (int)count;
    }
}
