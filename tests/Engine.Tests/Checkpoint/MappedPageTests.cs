using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Checkpoint;

/// <summary>
/// Resident pages of a safetensors file's memory map (Linux, /proc/self/smaps): a large read gives its pages back when
/// it is disposed, small reads stay resident until they add up to a batch, and releasing a range another reader is
/// still using never changes what that reader sees.
/// </summary>
[Collection(nameof(MappedPageTests))] // small reads are batched across the process: no other test's reads meanwhile
public sealed class MappedPageTests : IDisposable
{
    private const int RowBytes = 4 << 10;

    /// <summary>The smallest read that releases its own pages.</summary>
    private static readonly int BigBytes = PageResidency.Default.LargeReadBytes;

    private readonly TempFolder _tmp = new();
    private readonly string _path;

    public MappedPageTests()
    {
        SmallReadBatch.Flush(); // the batch is process-wide: start each test without other tests' pending reads
        _path = _tmp.Combine("pages.safetensors");
        using var writer = SafetensorsWriter.Create(_path, [new TensorSpec("big", DType.U8, [BigBytes])]);
        writer.WriteTensor("big", Expected());
        writer.Complete();
    }

    public void Dispose() => _tmp.Dispose();

    /// <summary>Bytes that differ from page to page, so a page read from the wrong place cannot pass.</summary>
    private static byte[] Expected() => Enumerable.Range(0, BigBytes).Select(i => (byte)(i * 31 + (i >> 12) * 7)).ToArray();

    /// <summary>Resident bytes of this process's mappings of <paramref name="file"/> (the Rss: lines of /proc/self/smaps).</summary>
    private static long Resident(string file)
    {
        long kilobytes = 0;
        bool inFile = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int space = line.IndexOf(' ');
            if (space > 0 && line[..space].Contains('-') && line[..space].All(c => char.IsAsciiHexDigit(c) || c == '-'))
                inFile = line.EndsWith(" " + file, StringComparison.Ordinal);
            else if (inFile && line.StartsWith("Rss:", StringComparison.Ordinal))
                kilobytes += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        return kilobytes * 1024;
    }

    private static long Touch(ReadOnlySpan<byte> bytes)
    {
        long sum = 0;
        for (int i = 0; i < bytes.Length; i += 512) sum += bytes[i];
        return sum;
    }

    [Fact]
    public void ALargeReadReleasesItsPagesWhenDisposed()
    {
        using var file = SafetensorsFile.Open(_path);
        var big = file.GetInfo("big");
        using (var bytes = file.Read(big))
        {
            Assert.True(bytes.Span.SequenceEqual(Expected()));
            Assert.True(Resident(_path) >= BigBytes, $"{Resident(_path)} bytes resident while the read is in use");
        }
        Assert.True(Resident(_path) <= 2 * Environment.SystemPageSize, $"{Resident(_path)} bytes still resident after the read was disposed");

        // The pages are still in the page cache and the map: reading again gives the same bytes.
        Assert.Equal(Expected(), file.ToArray(big));
    }

    [Fact]
    public void WithoutReleaseTheSameReadStaysResident()
    {
        using var file = SafetensorsFile.Open(_path, PageResidency.KeepPages);
        using (var bytes = file.Read(file.GetInfo("big"))) Touch(bytes.Span);
        Assert.True(Resident(_path) >= BigBytes, $"{Resident(_path)} bytes resident: the measurement above would prove nothing");
    }

    [Fact]
    public void SmallReadsStayResidentUntilTheyAddUpToABatch()
    {
        var policy = PageResidency.Default;
        Assert.True(RowBytes < policy.LargeReadBytes);
        Assert.True(policy.SmallReadBatchBytes > 2 * PageResidency.LargestFaultBytes, "the rows read below must fit in the default batch");
        using var file = SafetensorsFile.Open(_path, policy);
        var big = file.GetInfo("big");
        for (int row = 0; row < 256; row++)
        {
            using var bytes = file.Read(big, (long)row * RowBytes, RowBytes);
            Touch(bytes.Span);
        }
        Assert.True(Resident(_path) >= 256 * RowBytes, $"{Resident(_path)} bytes resident: small reads were released one by one");
    }

    [Fact]
    public void SmallReadsAreReleasedInBatchesSoTheyStayBounded()
    {
        const long batch = 2 << 20;
        using var file = SafetensorsFile.Open(_path, PageResidency.Default with { SmallReadBatchBytes = batch });
        var big = file.GetInfo("big");
        long peak = 0;
        for (int row = 0; row < BigBytes / RowBytes; row++)
        {
            using (var bytes = file.Read(big, (long)row * RowBytes, RowBytes)) Touch(bytes.Span);
            if (row % 64 == 63) peak = Math.Max(peak, Resident(_path));
        }
        // A batch's rows plus the largest faults at its ends; the whole tensor (16 MiB) was read.
        Assert.True(peak <= batch + 2 * PageResidency.LargestFaultBytes, $"{peak} bytes resident at the peak");
    }

    [Fact]
    public void SmallReadsOfAllFilesShareOneBatch()
    {
        string second = _tmp.Combine("second.safetensors");
        File.Copy(_path, second);
        var policy = PageResidency.Default with { SmallReadBatchBytes = 4 << 20 };
        using var first = SafetensorsFile.Open(_path, policy);
        using var other = SafetensorsFile.Open(second, policy);
        void ReadRows(SafetensorsFile file, int rows)
        {
            for (int row = 0; row < rows; row++)
            {
                using var bytes = file.Read(file.GetInfo("big"), (long)row * RowBytes, RowBytes);
                Touch(bytes.Span);
            }
        }
        ReadRows(first, 256); // 1 MiB: below the batch, stays resident
        Assert.True(Resident(_path) >= 256 * RowBytes, $"{Resident(_path)} bytes resident");
        ReadRows(other, 1024); // another file's 4 MiB fill the batch: the first file's rows go too
        Assert.True(Resident(_path) <= 2 * Environment.SystemPageSize, $"{Resident(_path)} bytes of the first file still resident");
    }

    [Fact]
    public void ReleasingARangeAnotherReaderUsesLeavesItsBytesCorrect()
    {
        byte[] expected = Expected();
        // Small batches too, so that batched releases of row spans overlap the large reads as well.
        using var file = SafetensorsFile.Open(_path, PageResidency.Default with { SmallReadBatchBytes = 256 << 10 });
        var big = file.GetInfo("big");
        var failures = new List<string>();
        using var holding = new Barrier(3);
        void Record(string what) { lock (failures) failures.Add(what); }
        var releasers = new[]
        {
            new Thread(() =>
            {
                holding.SignalAndWait();
                for (int i = 0; i < 20; i++)
                {
                    using var bytes = file.Read(big); // released (with the same pages the holder reads) when disposed
                    if (!bytes.Span.SequenceEqual(expected)) Record($"whole read {i}");
                }
            }),
            new Thread(() =>
            {
                holding.SignalAndWait();
                for (int i = 0; i < 20 * 64; i++)
                {
                    long offset = (long)(i * 37 % (BigBytes / RowBytes)) * RowBytes;
                    using var bytes = file.Read(big, offset, RowBytes);
                    if (!bytes.Span.SequenceEqual(expected.AsSpan((int)offset, RowBytes))) Record($"row at {offset}");
                }
            }),
        };
        foreach (var thread in releasers) thread.Start();
        using (var held = file.Read(big)) // one read held across all the releases of its range
        {
            holding.SignalAndWait();
            while (releasers.Any(t => t.IsAlive))
            {
                if (!held.Span.SequenceEqual(expected)) Record("held read");
            }
            if (!held.Span.SequenceEqual(expected)) Record("held read at the end");
        }
        foreach (var thread in releasers) thread.Join();
        Assert.Empty(failures);
    }
}

[CollectionDefinition(nameof(MappedPageTests), DisableParallelization = true)]
public sealed class MappedPageTestsCollection;
