using System.Buffers.Binary;
using System.Text.Json;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>A tensor to be written: the header needs every name, dtype and shape before the first data byte.</summary>
public sealed record TensorSpec(string Name, DType DType, long[] Shape)
{
    public long ByteLength => TensorInfo.ElementsOf(Shape) * DTypes.SizeOf(DType);
}

/// <summary>
/// Streams one safetensors file to disk: the header first (deterministic: entries in the given order,
/// <c>{"format":"pt"}</c> metadata, padded with spaces to 8 bytes), then each tensor's bytes in the same order as
/// they arrive, in pieces of any size. No tensor and no shard is ever held whole in memory. A writer disposed
/// before every byte arrived deletes its file, so a partial shard never looks complete.
/// </summary>
public sealed class SafetensorsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly IReadOnlyList<TensorSpec> _tensors;
    private int _current;
    private long _writtenInCurrent;
    private bool _completed;

    private SafetensorsWriter(string path, FileStream stream, IReadOnlyList<TensorSpec> tensors)
    {
        Path = path;
        _stream = stream;
        _tensors = tensors;
    }

    public string Path { get; }

    /// <summary>Creates <paramref name="path"/> and writes its header.</summary>
    public static SafetensorsWriter Create(string path, IReadOnlyList<TensorSpec> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = BuildHeader(tensors, metadata ?? new Dictionary<string, string> { ["format"] = "pt" });
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        try
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
        }
        catch
        {
            stream.Dispose();
            File.Delete(path);
            throw;
        }
        var writer = new SafetensorsWriter(path, stream, tensors);
        writer.SkipEmptyTensors();
        return writer;
    }

    /// <summary>The JSON header, padded with spaces so the data section starts 8-byte aligned.</summary>
    public static byte[] BuildHeader(IReadOnlyList<TensorSpec> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var t in tensors)
            {
                if (!seen.Add(t.Name)) throw new ArgumentException($"Tensor '{t.Name}' is listed twice.", nameof(tensors));
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", DTypes.Name(t.DType));
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += t.ByteLength;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int length = (int)buffer.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    /// <summary>The tensor whose bytes are expected next, or null when all have been written.</summary>
    public TensorSpec? Current => _current < _tensors.Count ? _tensors[_current] : null;

    /// <summary>Appends bytes of the current tensor; a piece may not run past the end of that tensor.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        var current = Current ?? throw OrderError($"all {_tensors.Count} tensors are already written; {bytes.Length} more bytes arrived");
        long remaining = current.ByteLength - _writtenInCurrent;
        if (bytes.Length > remaining)
            throw OrderError($"tensor '{current.Name}' has {remaining} bytes left but {bytes.Length} arrived");
        _stream.Write(bytes);
        _writtenInCurrent += bytes.Length;
        if (_writtenInCurrent == current.ByteLength)
        {
            _current++;
            _writtenInCurrent = 0;
            SkipEmptyTensors();
        }
    }

    /// <summary>Writes a whole tensor, checking that it is the one the header expects next.</summary>
    public void WriteTensor(string name, ReadOnlySpan<byte> bytes)
    {
        var current = Current;
        if (current is null || current.Name != name || _writtenInCurrent != 0)
            throw OrderError($"tensor '{name}' arrived while '{current?.Name ?? "(none)"}' was expected");
        if (bytes.Length != current.ByteLength)
            throw OrderError($"tensor '{name}' needs {current.ByteLength} bytes but {bytes.Length} arrived");
        Append(bytes);
    }

    /// <summary>Flushes to disk; fails if any tensor is incomplete.</summary>
    public void Complete()
    {
        if (Current is { } missing)
            throw OrderError($"the file was closed before tensor '{missing.Name}' was complete");
        _stream.Flush(flushToDisk: true);
        _completed = true;
    }

    public void Dispose()
    {
        _stream.Dispose();
        if (!_completed) File.Delete(Path);
    }

    private void SkipEmptyTensors()
    {
        while (_current < _tensors.Count && _tensors[_current].ByteLength == 0) _current++;
    }

    private ModelOptException OrderError(string what) =>
        new(ErrorIds.SafetensorsWriteOrder, ErrorKind.InvalidOperation, $"Writing '{Path}': {what}.", Path);
}
