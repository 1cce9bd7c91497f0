using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Checkpoint;

public class SafetensorsRoundTripTests
{
    private static byte[] Bytes(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 31 + seed)).ToArray();

    [Fact]
    public void WriterProducesAlignedHeaderWithPtMetadataAndExactBytes()
    {
        using var tmp = new TempFolder();
        var path = tmp.Combine("a.safetensors");
        var specs = new List<TensorSpec>
        {
            new("b.weight", DType.BF16, [3, 5]),
            new("a.scalar", DType.F32, []),
            new("c.empty", DType.U8, [0, 4]),
            new("d.codes", DType.U8, [7]),
        };
        using (var w = SafetensorsWriter.Create(path, specs))
        {
            w.WriteTensor("b.weight", Bytes(30, 1));
            w.Append(Bytes(4, 2).AsSpan(0, 1)); // pieces of any size
            w.Append(Bytes(4, 2).AsSpan(1, 3));
            w.WriteTensor("d.codes", Bytes(7, 3));
            w.Complete();
        }
        var raw = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0, (8 + headerLength) % 8);
        var json = JsonNode.Parse(Encoding.UTF8.GetString(raw, 8, (int)headerLength).TrimEnd(' '))!.AsObject();
        Assert.Equal("pt", json["__metadata__"]!["format"]!.GetValue<string>());
        // Header order is the order given: deterministic output.
        Assert.Equal(["__metadata__", "b.weight", "a.scalar", "c.empty", "d.codes"], json.Select(kv => kv.Key));

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(Bytes(30, 1), file.ToArray(file.GetInfo("b.weight")));
        Assert.Equal(Bytes(4, 2), file.ToArray(file.GetInfo("a.scalar")));
        Assert.Empty(file.ToArray(file.GetInfo("c.empty")));
        Assert.Equal(Bytes(7, 3), file.ToArray(file.GetInfo("d.codes")));
        Assert.Equal(Bytes(30, 1).AsSpan(6, 4).ToArray(), file.ToArray(file.GetInfo("b.weight"), 6, 4));
        Assert.Empty(file.GetInfo("a.scalar").Shape);
    }

    [Fact]
    public void WriterRefusesWrongOrderAndDeletesIncompleteFile()
    {
        using var tmp = new TempFolder();
        var path = tmp.Combine("a.safetensors");
        var specs = new List<TensorSpec> { new("x", DType.U8, [4]), new("y", DType.U8, [4]) };
        using (var w = SafetensorsWriter.Create(path, specs))
        {
            var ex = Assert.Throws<ModelOptException>(() => w.WriteTensor("y", new byte[4]));
            Assert.Equal(ErrorIds.SafetensorsWriteOrder, ex.ErrorId);
            Assert.Throws<ModelOptException>(() => w.Append(new byte[5]));
            w.WriteTensor("x", new byte[4]);
            Assert.Throws<ModelOptException>(() => w.Complete());
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ShardedWriterSplitsAtLimitAndIndexMatchesReader()
    {
        using var tmp = new TempFolder();
        File.WriteAllText(tmp.Combine("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}");
        var specs = Enumerable.Range(0, 10).Select(i => new TensorSpec($"t{i}", DType.F32, [25])).ToList(); // 100 B each
        IReadOnlyList<string> files;
        using (var w = new CheckpointWriter(tmp.Path, specs, maxShardBytes: 250))
        {
            foreach (var s in specs) w.WriteTensor(s.Name, Bytes(100, s.Name[1]));
            files = w.Complete();
        }
        Assert.Equal(["model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors", "model-00003-of-00005.safetensors",
            "model-00004-of-00005.safetensors", "model-00005-of-00005.safetensors", CheckpointWriter.IndexFileName], files);
        var index = CheckpointIndex.Load(tmp.Combine(CheckpointWriter.IndexFileName));
        Assert.Equal(1000, index.TotalSize);
        using var reader = CheckpointReader.Open(tmp.Path);
        Assert.Equal(5, reader.Shards.Count);
        Assert.Equal(10, reader.Tensors.Count);
        foreach (var s in specs)
        {
            var t = reader.GetTensor(s.Name);
            Assert.Equal(Bytes(100, s.Name[1]), t.File.ToArray(t.Info));
        }
    }

    [Fact]
    public void SingleShardIsNamedModelSafetensorsWithoutIndex()
    {
        using var tmp = new TempFolder();
        using (var w = new CheckpointWriter(tmp.Path, [new TensorSpec("x", DType.BF16, [2, 2])]))
        {
            w.WriteTensor("x", new byte[8]);
            Assert.Equal(["model.safetensors"], w.Complete());
        }
        Assert.False(File.Exists(tmp.Combine(CheckpointWriter.IndexFileName)));
    }

    [Fact]
    public void FixtureGenerationIsDeterministic()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        Fixtures.TinyCheckpoints.Write("qwen3_5_moe", a.Path, maxShardBytes: 200_000);
        Fixtures.TinyCheckpoints.Write("qwen3_5_moe", b.Path, maxShardBytes: 200_000);
        var names = Directory.GetFiles(a.Path).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(names, Directory.GetFiles(b.Path).Select(Path.GetFileName).Order().ToList());
        Assert.Contains(CheckpointWriter.IndexFileName, names);
        foreach (var name in names)
            Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, name!)), File.ReadAllBytes(Path.Combine(b.Path, name!)));
    }
}
