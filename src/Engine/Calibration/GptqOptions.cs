using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Numerics;

namespace ModelOptPS.Engine.Calibration;

/// <summary>
/// ModelOpt's GPTQ settings (<c>GPTQCalibConfig</c>): <c>perc_damp</c> 0.01 (the fraction of the mean Hessian diagonal
/// added to the diagonal) and <c>block_size</c> 128 (columns per lazy batch update; a multiple of the NVFP4 block, 16).
/// </summary>
public sealed record GptqOptions
{
    public static GptqOptions Default { get; } = new();

    public double PercDamp { get; init; } = 0.01;

    public int BlockSize { get; init; } = 128;

    /// <summary>Refuses what ModelOpt's config refuses: damp outside (0, 1], a block size that is not a positive multiple of 16.</summary>
    public void Validate()
    {
        if (!(PercDamp > 0 && PercDamp <= 1))
            throw new ModelOptException(GptqErrorIds.InvalidGptqOptions, ErrorKind.InvalidArgument,
                $"GPTQ perc_damp must be in (0, 1]; got {PercDamp}.");
        if (BlockSize <= 0 || BlockSize % Nvfp4.BlockSize != 0)
            throw new ModelOptException(GptqErrorIds.InvalidGptqOptions, ErrorKind.InvalidArgument,
                $"GPTQ block_size must be a positive multiple of the NVFP4 block ({Nvfp4.BlockSize}); got {BlockSize}.");
    }
}
