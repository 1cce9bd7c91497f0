using System.Runtime.CompilerServices;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Execution;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Safetensors;
using ModelOptPS.Engine.Tests.Export;

namespace ModelOptPS.Engine.Tests.Checkpoint;

/// <summary>
/// A model's memory maps: reading after dispose is the ModelDisposed error on every reading path (never a read of
/// unmapped memory), a dispose during a read waits for it, and a model nobody disposed is unmapped by the GC.
/// </summary>
public sealed class MemoryMapLifetimeTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>The mappings of <paramref name="file"/> in this process, from /proc/self/maps.</summary>
    private static int MapsOf(string file) => File.ReadLines("/proc/self/maps").Count(l => l.EndsWith(" " + file, StringComparison.Ordinal));

    [Fact]
    public void ReadingADisposedModelIsModelDisposedOnEveryPath()
    {
        var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        var embed = model.Checkpoint.GetTensor("model.embed_tokens.weight");
        Assert.NotEmpty(embed.File.ToArray(embed.Info, 0, 16)); // mapped before the dispose
        model.Dispose();
        string target = _tmp.Combine("out");

        var failures = new Dictionary<string, Action>
        {
            ["SafetensorsFile.Read"] = () => { using var bytes = embed.File.Read(embed.Info); },
            ["SafetensorsFile.ToArray"] = () => embed.File.ToArray(embed.Info),
            ["CheckpointExporter.Export"] = () => CheckpointExporter.Export(model, target, new ExportOptions()),
            ["ModelRunner.Forward"] = () =>
            {
                using var runner = ModelRunner.Create(model);
                using var logits = runner.Forward([1, 2, 3]);
            },
        };
        foreach (var (path, read) in failures)
        {
            var ex = Unwrapped(read);
            Assert.True(ex is ModelOptException { ErrorId: ErrorIds.ModelDisposed }, $"{path}: {ex}");
            var error = (ModelOptException)ex;
            Assert.Equal(ErrorKind.InvalidOperation, error.Kind);
            Assert.StartsWith(model.Path, error.Path);
            Assert.IsType<ObjectDisposedException>(error.InnerException);
        }
        Assert.False(Directory.Exists(target));
        Assert.Empty(FolderSnapshot.Leftovers(target));
        Assert.Equal(0, MapsOf(embed.File.Path));
    }

    [Fact]
    public void ADisposeDuringAReadWaitsForIt()
    {
        using var model = ExportFixture.Planned(_tmp, "llama", "W4A16_NVFP4");
        var embed = model.Checkpoint.GetTensor("model.embed_tokens.weight");
        byte[] expected = embed.File.ToArray(embed.Info);
        using (var bytes = embed.File.Read(embed.Info))
        {
            model.Dispose();
            Assert.Equal(1, MapsOf(embed.File.Path));
            Assert.Equal(expected, bytes.Span.ToArray()); // still mapped: the read holds the map
        }
        Assert.Equal(0, MapsOf(embed.File.Path));
    }

    [Fact]
    public void AModelNobodyDisposedIsUnmappedOnceUnreachable()
    {
        var shards = ReadAndAbandon(_tmp);
        for (int i = 0; i < 10 && shards.Any(s => MapsOf(s) > 0); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.All(shards, s => Assert.Equal(0, MapsOf(s)));
        Assert.DoesNotContain(new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos(),
            fd => fd.LinkTarget is { } file && shards.Contains(file));
    }

    /// <summary>Imports a model, reads every tensor (mapping every shard), and drops it undisposed.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string[] ReadAndAbandon(TempFolder tmp)
    {
        var model = ExportFixture.Planned(tmp, "qwen3_moe", "W4A16_NVFP4", maxShardBytes: 100_000);
        foreach (var t in model.Checkpoint.Tensors.Values)
        {
            using var bytes = t.File.Read(t.Info, 0, (int)Math.Min(t.Info.ByteLength, 64));
        }
        Assert.True(model.ShardCount > 1);
        var shards = model.Checkpoint.Shards.Select(s => s.Path).ToArray();
        // Checked while the model is still reachable: a collection by another test after the return may unmap it.
        Assert.All(shards, s => Assert.True(MapsOf(s) > 0, $"{s} was never mapped"));
        GC.KeepAlive(model);
        return shards;
    }

    /// <summary>What <paramref name="read"/> threw, through the AggregateException of a parallel loop.</summary>
    private static Exception Unwrapped(Action read)
    {
        var ex = Assert.ThrowsAny<Exception>(read);
        return ex is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : ex;
    }
}
