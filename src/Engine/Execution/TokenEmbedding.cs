using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Embedding lookup straight from the memory-mapped table: only the rows of the tokens are read, so the [V, H] table
/// is never materialised (it is not a layer's weight and can be larger than one).
/// </summary>
internal static class TokenEmbedding
{
    public static Tensor Lookup(TensorRef table, long[] tokens, ScalarType type, Device device)
    {
        TensorInfo info = table.Info;
        long vocab = info.Shape[0], hidden = info.Shape[1];
        int rowBytes = checked((int)(info.ByteLength / vocab));
        foreach (long token in tokens)
        {
            if (token < 0 || token >= vocab)
                throw new ModelOptException(ExecutionErrors.TokenOutOfRange, ErrorKind.InvalidArgument,
                    $"Token id {token} is outside the embedding table '{info.Name}' (vocabulary {vocab}).", table.File.Path);
        }

        Tensor rows = empty([tokens.LongLength, hidden], WeightLoader.SourceType(info));
        long rowsPerBand = Math.Max(1, int.MaxValue / rowBytes);
        for (long start = 0; start < tokens.LongLength; start += rowsPerBand)
        {
            long count = Math.Min(rowsPerBand, tokens.LongLength - start);
            using Tensor band = rows.narrow(0, start, count);
            Span<byte> destination = band.bytes;
            for (int i = 0; i < count; i++)
            {
                using var row = table.File.Read(info, tokens[start + i] * rowBytes, rowBytes);
                row.Span.CopyTo(destination.Slice(i * rowBytes, rowBytes));
            }
        }
        return rows.to(type, device);
    }
}
