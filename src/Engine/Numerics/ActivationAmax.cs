using System.Globalization;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// The guard every activation scale shares (NVFP4 <c>input_scale</c>, FP8 <c>input_scale</c>, KV <c>k_scale</c>/<c>v_scale</c>):
/// a calibrated amax must be a finite number above zero. ModelOpt asserts at export; the caller backfills first.
/// </summary>
internal static class ActivationAmax
{
    /// <summary>Throws <see cref="NumericsErrorIds.InvalidInputAmax"/> naming <paramref name="name"/> unless 0 &lt; amax &lt; ∞.</summary>
    public static void Require(float amax, string name)
    {
        if (!(amax > 0f) || !float.IsFinite(amax))
        {
            throw new ModelOptException(
                NumericsErrorIds.InvalidInputAmax,
                ErrorKind.InvalidData,
                $"'{name}' has activation amax {amax.ToString("R", CultureInfo.InvariantCulture)}; "
                + "a scale needs a finite amax above zero. Calibrate with data that reaches this module, or backfill its amax.");
        }
    }
}
