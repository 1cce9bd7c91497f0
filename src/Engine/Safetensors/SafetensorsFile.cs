using System.IO.MemoryMappedFiles;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// One safetensors file: the validated header, and its tensor bytes through a read-only memory map that is created
/// on first access. Nothing but the header is read up front, so opening a multi-GB shard costs microseconds and the
/// operating system pages in only the bytes a caller touches.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly object _mapLock = new();
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private bool _disposed;

    private SafetensorsFile(SafetensorsHeader header) => Header = header;

    public SafetensorsHeader Header { get; }

    public string Path => Header.Path;

    public IReadOnlyDictionary<string, TensorInfo> Tensors => Header.Tensors;

    public static SafetensorsFile Open(string path) => new(SafetensorsHeader.Read(path));

    /// <summary>Looks up a tensor by name or throws <see cref="ErrorIds.TensorNotFound"/>.</summary>
    public TensorInfo GetInfo(string name) =>
        Header.Tensors.TryGetValue(name, out var info)
            ? info
            : throw new ModelOptException(ErrorIds.TensorNotFound, ErrorKind.ObjectNotFound,
                $"Safetensors file '{Path}' has no tensor '{name}'.", Path);

    /// <summary>
    /// The bytes <c>[offset, offset + length)</c> of a tensor. Tensors can exceed 2 GiB (fused experts of large
    /// models), so callers take slices (one expert, a band of rows) rather than the whole tensor.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo tensor, long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (offset + length > tensor.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(length),
                $"[{offset}, {offset + length}) is outside tensor '{tensor.Name}' ({tensor.ByteLength} bytes).");
        if (length == 0) return ReadOnlySpan<byte>.Empty;
        return new ReadOnlySpan<byte>(Base() + Header.DataStart + tensor.Begin + offset, length);
    }

    /// <summary>All bytes of a tensor below 2 GiB.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo tensor) =>
        tensor.ByteLength <= int.MaxValue
            ? GetBytes(tensor, 0, (int)tensor.ByteLength)
            : throw new InvalidOperationException($"Tensor '{tensor.Name}' is {tensor.ByteLength} bytes; read it in slices.");

    private byte* Base()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_base != null) return _base;
        lock (_mapLock)
        {
            if (_base != null) return _base;
            _map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            _base = pointer + _view.PointerOffset;
            return _base;
        }
    }

    /// <summary>True once tensor data has been mapped (tests use it to show that import reads no data).</summary>
    public bool IsMapped => _base != null;

    public void Dispose()
    {
        lock (_mapLock)
        {
            if (_disposed) return;
            _disposed = true;
            if (_view is not null)
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
                _view.Dispose();
            }
            _map?.Dispose();
            _base = null;
        }
    }
}
