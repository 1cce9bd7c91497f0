using System.Runtime.InteropServices;

namespace ModelOptPS.Engine.Safetensors;

/// <summary>
/// Bytes of a memory-mapped safetensors file, readable until disposed. It holds a reference on the map's handle, so a
/// file disposed (or finalized) while these bytes are in use stays mapped until they are released: never a read of
/// unmapped memory. Disposing also hands the pages back to the kernel (<see cref="MappedPages"/>), so resident memory
/// does not grow with what was read. Use it in a <c>using</c> and read <see cref="Span"/> inside it only.
/// </summary>
public readonly ref struct MappedBytes : IDisposable
{
    private readonly SafeBuffer? _map;
    private readonly MappedPages? _pages;

    internal MappedBytes(SafeBuffer? map, MappedPages? pages, ReadOnlySpan<byte> span)
    {
        _map = map;
        _pages = pages;
        Span = span;
    }

    public ReadOnlySpan<byte> Span { get; }

    public int Length => Span.Length;

    public void Dispose()
    {
        if (_map is null) return;
        try
        {
            _pages?.Consumed(_map, Span); // before the reference goes: the range must still be this file's mapping
        }
        finally
        {
            _map.ReleasePointer();
        }
    }
}
