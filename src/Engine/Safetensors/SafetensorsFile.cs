using System.IO.MemoryMappedFiles;
using ModelOptPS.Engine.Errors;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// One safetensors file: the validated header, and its tensor bytes through a read-only memory map that is created
/// on first access. Nothing but the header is read up front, so opening a multi-GB shard costs microseconds and the
/// operating system pages in only the bytes a caller touches. Each read holds a reference on the map only while its
/// <see cref="MappedBytes"/> is in use, so neither a dispose during a read nor the GC can unmap bytes being read.
/// Consumed reads give their pages back (<see cref="PageResidency"/>), so resident memory stays flat however much of the
/// file is read.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly object _mapLock = new();
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private readonly MappedPages _pages;
    private bool _disposed;

    private SafetensorsFile(SafetensorsHeader header, PageResidency residency)
    {
        Header = header;
        _pages = new MappedPages(residency);
    }

    public SafetensorsHeader Header { get; }

    public string Path => Header.Path;

    public IReadOnlyDictionary<string, TensorInfo> Tensors => Header.Tensors;

    public static SafetensorsFile Open(string path) => Open(path, PageResidency.Default);

    /// <summary>Opens with another release policy (tests and the mapping benchmark compare policies).</summary>
    internal static SafetensorsFile Open(string path, PageResidency residency) => new(SafetensorsHeader.Read(path), residency);

    /// <summary>Looks up a tensor by name or throws <see cref="ErrorIds.TensorNotFound"/>.</summary>
    public TensorInfo GetInfo(string name) =>
        Header.Tensors.TryGetValue(name, out var info)
            ? info
            : throw new ModelOptException(ErrorIds.TensorNotFound, ErrorKind.ObjectNotFound,
                $"Safetensors file '{Path}' has no tensor '{name}'.", Path);

    /// <summary>
    /// The bytes <c>[offset, offset + length)</c> of a tensor, to read inside a <c>using</c>. Tensors can exceed 2 GiB
    /// (fused experts of large models), so callers take slices (one expert, a band of rows) rather than the whole tensor.
    /// </summary>
    public MappedBytes Read(TensorInfo tensor, long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (offset + length > tensor.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(length),
                $"[{offset}, {offset + length}) is outside tensor '{tensor.Name}' ({tensor.ByteLength} bytes).");
        MappedBytes bytes;
        lock (_mapLock)
        {
            if (_disposed) throw Disposed();
            if (length == 0) return new MappedBytes(null, null, ReadOnlySpan<byte>.Empty);
            if (_view is null)
            {
                _map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
            var handle = _view.SafeMemoryMappedViewHandle;
            byte* pointer = null;
            handle.AcquirePointer(ref pointer); // a reference the MappedBytes returns; unmapping waits for it
            bytes = new MappedBytes(handle, _pages, new ReadOnlySpan<byte>(pointer + _view.PointerOffset + Header.DataStart + tensor.Begin + offset, length));
        }
        _pages.Starting(bytes.Span); // outside the lock: mapping in a cold range waits for the disk
        return bytes;
    }

    /// <summary>All bytes of a tensor below 2 GiB.</summary>
    public MappedBytes Read(TensorInfo tensor) =>
        tensor.ByteLength <= int.MaxValue
            ? Read(tensor, 0, (int)tensor.ByteLength)
            : throw new InvalidOperationException($"Tensor '{tensor.Name}' is {tensor.ByteLength} bytes; read it in slices.");

    /// <summary>A copy of the bytes <c>[offset, offset + length)</c> of a tensor (small tensors: scalars, test checks).</summary>
    public byte[] ToArray(TensorInfo tensor, long offset, int length)
    {
        using var bytes = Read(tensor, offset, length);
        return bytes.Span.ToArray();
    }

    /// <summary>A copy of all bytes of a tensor below 2 GiB.</summary>
    public byte[] ToArray(TensorInfo tensor)
    {
        using var bytes = Read(tensor);
        return bytes.Span.ToArray();
    }

    /// <summary>True once tensor data has been mapped (tests use it to show that import reads no data).</summary>
    public bool IsMapped => _view is not null;

    /// <summary>
    /// Unmaps the file once no <see cref="MappedBytes"/> is in use; reading afterwards is <see cref="ErrorIds.ModelDisposed"/>.
    /// A file never disposed is unmapped by the map handle's own finalizer once the file is unreachable, since no
    /// reference on the handle outlives a read.
    /// </summary>
    public void Dispose()
    {
        lock (_mapLock)
        {
            if (_disposed) return;
            _disposed = true;
            SmallReadBatch.Forget(_pages);
            _view?.Dispose();
            _map?.Dispose();
        }
    }

    private ModelOptException Disposed() =>
        new(ErrorIds.ModelDisposed, ErrorKind.InvalidOperation,
            $"The checkpoint file '{Path}' was closed: its model was disposed. Import the checkpoint again to read it.", Path,
            new ObjectDisposedException(nameof(SafetensorsFile)));
}
