using System.Text;

namespace ModelOptPS.Fixtures;

/// <summary>
/// SplitMix64, the generators' random source: small, fast, and the same stream for the same state on every machine.
/// <see cref="ForTensor"/> seeds one stream per (seed, tensor name), so values do not depend on write order.
/// </summary>
public struct SplitMix64(ulong state)
{
    private ulong _state = state;

    /// <summary>The stream for tensor <paramref name="name"/> under <paramref name="seed"/> (FNV-1a of the name, mixed with the seed).</summary>
    public static SplitMix64 ForTensor(string name, int seed)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash ^= b;
            hash *= 0x100000001B3UL;
        }
        return new SplitMix64(hash ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL));
    }

    /// <summary>The stream's state (to derive sub-streams, e.g. one per row).</summary>
    public readonly ulong State => _state;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextUniform() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
