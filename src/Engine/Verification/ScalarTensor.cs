using System.Buffers.Binary;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>An F32 scale stored as a one-element tensor (global, input, FP8 weight and KV scales), checked and read.</summary>
internal static class ScalarTensor
{
    /// <summary>
    /// Checks the F32 scale <paramref name="name"/> of a module (dtype, <paramref name="shape"/>, a finite value above
    /// zero) and returns its value when it is valid; records every problem on <paramref name="check"/>.
    /// </summary>
    /// <param name="missingId">The id when the module has no such tensor; null when its absence is not a problem here.</param>
    public static float? Read(IReadOnlyDictionary<string, TensorInfo> parameters, string name, long[] shape, string? missingId,
        CheckBuilder check, Func<string, TensorRef> tensor)
    {
        if (!parameters.TryGetValue(name, out var info))
        {
            if (missingId is not null)
                check.Fail(missingId, $"Has no '{name}' (F32 {Text.Shape(shape)}); engines load missing scales as zero or garbage.");
            return null;
        }
        if (info.DType != DType.F32)
        {
            check.Fail(VerificationIds.WrongDType, $"'{name}' is {info.DType}; scales are F32.");
            return null;
        }
        if (!info.Shape.SequenceEqual(shape))
        {
            check.Fail(VerificationIds.WrongShape, $"'{name}' has shape {info.ShapeText}; it must be {Text.Shape(shape)}.");
            if (info.ElementCount != 1) return null;
        }
        var stored = tensor(name);
        float value = BinaryPrimitives.ReadSingleLittleEndian(stored.File.ToArray(stored.Info));
        string? problem = float.IsNaN(value) ? "NaN" : float.IsInfinity(value) ? "infinite" : value == 0 ? "zero" : value < 0 ? "negative" : null;
        if (problem is null) return value;
        check.Fail(VerificationIds.InvalidScale,
            $"'{name}' is {problem} ({Text.Scale(value)}); a scale must be a finite number above zero, or every output it scales is NaN, zero or sign-flipped.");
        return null;
    }
}
