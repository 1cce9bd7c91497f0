using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// Bytes of a memory-mapped safetensors file, readable until disposed. It holds a reference on the map's handle, so a
/// file disposed (or finalized) while these bytes are in use stays mapped until they are released: never a read of
/// unmapped memory. Use it in a <c>using</c> and read <see cref="Span"/> inside it only.
/// </summary>
public readonly ref struct MappedBytes : IDisposable
{
    private readonly SafeBuffer? _map;

    internal MappedBytes(SafeBuffer? map, ReadOnlySpan<byte> span)
    {
        _map = map;
        Span = span;
    }

    public ReadOnlySpan<byte> Span { get; }

    public int Length => Span.Length;

    public void Dispose() => _map?.ReleasePointer();
}
