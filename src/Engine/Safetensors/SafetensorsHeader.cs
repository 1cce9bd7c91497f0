using System.Buffers.Binary;
using System.Text.Json;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// A parsed and validated safetensors header. The format: 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"__metadata__": {..}, "name": {"dtype", "shape", "data_offsets": [begin, end]}}</c>), then the data section.
/// Every rule the format states is checked here, so code that reads tensor bytes can trust the spans.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>Same bound as the reference implementation: a larger header is a corrupt or hostile file.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private SafetensorsHeader(string path, long headerLength, long fileLength,
        IReadOnlyDictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        HeaderLength = headerLength;
        FileLength = fileLength;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }

    /// <summary>Length of the JSON header in bytes (without the 8-byte prefix).</summary>
    public long HeaderLength { get; }

    public long FileLength { get; }

    /// <summary>Offset of the data section in the file.</summary>
    public long DataStart => 8 + HeaderLength;

    public long DataLength => FileLength - DataStart;

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads and validates the header of <paramref name="path"/>; reads only the header bytes.</summary>
    public static SafetensorsHeader Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (fileLength < 8 || stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
            throw Error(ErrorIds.SafetensorsTruncated, path, $"the file is {fileLength} bytes long, too short to hold the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - 8))
            throw Error(ErrorIds.SafetensorsHeaderTooLong, path,
                $"the header length field says {headerLength} bytes but only {fileLength - 8} bytes follow it");
        if (headerLength > MaxHeaderLength)
            throw Error(ErrorIds.SafetensorsHeaderTooLong, path,
                $"the header length field says {headerLength} bytes, above the {MaxHeaderLength}-byte limit of the format");
        var json = new byte[headerLength];
        stream.ReadExactly(json);
        return Parse(path, json, fileLength);
    }

    /// <summary>Parses header JSON that was read from a file of <paramref name="fileLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(string path, ReadOnlySpan<byte> json, long fileLength)
    {
        long dataLength = fileLength - 8 - json.Length;
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"the header is not valid JSON ({ex.Message})", ex);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Error(ErrorIds.SafetensorsHeaderInvalid, path, "the header is not a JSON object");
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                if (tensors.ContainsKey(property.Name))
                    throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"tensor '{property.Name}' appears twice in the header");
                tensors.Add(property.Name, ReadTensor(path, property.Name, property.Value));
            }
        }
        ValidateSpans(path, tensors.Values, dataLength);
        return new SafetensorsHeader(path, json.Length, fileLength, tensors, metadata);
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(ErrorIds.SafetensorsHeaderInvalid, path, "__metadata__ is not an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"__metadata__ entry '{entry.Name}' is not a string");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ReadTensor(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
        {
            throw Error(ErrorIds.SafetensorsHeaderInvalid, path,
                $"tensor '{name}' needs \"dtype\" (string), \"shape\" (array) and \"data_offsets\" ([begin, end])");
        }
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
            throw Error(ErrorIds.SafetensorsUnknownDType, path, $"tensor '{name}' has dtype '{dtypeName}', which is not one of {string.Join(", ", Enum.GetNames<DType>())}");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0)
                throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"tensor '{name}' has a shape entry that is not a non-negative integer");
            shape[i++] = d;
        }
        long begin = ReadOffset(path, name, offsetsElement[0]);
        long end = ReadOffset(path, name, offsetsElement[1]);
        if (end < begin)
            throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"tensor '{name}' ends (offset {end}) before it begins (offset {begin})");
        long expected;
        try
        {
            expected = checked(TensorInfo.ElementsOf(shape) * DTypes.SizeOf(dtype));
        }
        catch (OverflowException)
        {
            throw Error(ErrorIds.SafetensorsShapeMismatch, path, $"tensor '{name}' has a shape whose size overflows 64 bits");
        }
        if (expected != end - begin)
            throw Error(ErrorIds.SafetensorsShapeMismatch, path,
                $"tensor '{name}' is {dtypeName} [{string.Join(", ", shape)}] = {expected} bytes, but its data_offsets span {end - begin} bytes");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(string path, string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long value) || value < 0)
            throw Error(ErrorIds.SafetensorsHeaderInvalid, path, $"tensor '{name}' has a data offset that is not a non-negative integer");
        return value;
    }

    /// <summary>
    /// Spans must not overlap and must lie inside the data section. A file whose spans are contiguous from 0 but
    /// which ends early was cut short (an interrupted download or copy); that is reported as truncation.
    /// </summary>
    private static void ValidateSpans(string path, IEnumerable<TensorInfo> tensors, long dataLength)
    {
        var sorted = tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long previousEnd = 0;
        bool contiguous = true;
        TensorInfo? previous = null;
        foreach (var t in sorted)
        {
            if (previous is not null && t.Begin < previousEnd)
                throw Error(ErrorIds.SafetensorsOverlappingSpans, path,
                    $"tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{t.Name}' [{t.Begin}, {t.End}) overlap");
            contiguous &= t.Begin == previousEnd;
            previousEnd = t.End;
            previous = t;
        }
        if (previousEnd <= dataLength) return;
        var outside = sorted.First(t => t.End > dataLength);
        if (contiguous)
            throw Error(ErrorIds.SafetensorsTruncated, path,
                $"the header describes {previousEnd} bytes of tensor data but the file holds only {Math.Max(dataLength, 0)}; the file was cut short (first incomplete tensor: '{outside.Name}')");
        throw Error(ErrorIds.SafetensorsSpanOutOfFile, path,
            $"tensor '{outside.Name}' spans [{outside.Begin}, {outside.End}) but the data section is only {Math.Max(dataLength, 0)} bytes long");
    }

    private static ModelOptException Error(string id, string path, string what, Exception? inner = null) =>
        new(id, ErrorKind.InvalidData, $"Safetensors file '{path}': {what}.", path, inner);
}
