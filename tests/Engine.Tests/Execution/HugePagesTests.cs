using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ModelOptPS.Engine.Execution;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>
/// A layer's weights are copied into memory advised for transparent huge pages before its first touch, so it faults in
/// 2 MiB at a time (checked in /proc/self/smaps); where the kernel has THP off the advice changes nothing.
/// </summary>
public sealed unsafe class HugePagesTests
{
    [Fact]
    public void AdvisedMemoryIsBackedByHugePagesWhereTheKernelAllowsIt()
    {
        if (!OperatingSystem.IsLinux()) return;
        string mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
        const int bytes = 16 << 20;
        void* memory = NativeMemory.AlignedAlloc(bytes, 2 << 20);
        try
        {
            var span = new Span<byte>(memory, bytes);
            HugePages.Advise(span);
            span.Fill(1); // the first touch: faults in as huge pages
            long huge = AnonHugePages((nuint)memory);
            if (mode.Contains("[never]", StringComparison.Ordinal)) Assert.Equal(0, huge);
            else Assert.True(huge >= 2 << 20, $"{huge} bytes of huge pages in the advised 16 MiB (THP: {mode.Trim()})");
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
        }
    }

    [Fact]
    public void SpansSmallerThanTwoHugePagesAreLeftAlone()
    {
        var small = new byte[(2 << 20) + 4096];
        HugePages.Advise(small); // nothing to advise, and no failure
        Assert.All(small, b => Assert.Equal(0, b));
    }

    /// <summary>AnonHugePages of the mapping that holds <paramref name="address"/>.</summary>
    private static long AnonHugePages(nuint address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-'), space = line.IndexOf(' ');
            if (dash > 0 && space > dash && line[..dash].All(char.IsAsciiHexDigit))
            {
                nuint start = nuint.Parse(line[..dash], System.Globalization.NumberStyles.HexNumber);
                nuint end = nuint.Parse(line[(dash + 1)..space], System.Globalization.NumberStyles.HexNumber);
                inside = address >= start && address < end;
            }
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        return 0;
    }
}
