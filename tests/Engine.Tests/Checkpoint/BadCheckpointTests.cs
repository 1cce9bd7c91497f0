using System.Text;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Tests.Checkpoint;

/// <summary>Each malformed input gets its own error id, names the file, and nothing is written to the folder.</summary>
public class BadCheckpointTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private string Config() { File.WriteAllText(_tmp.Combine("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}"); return _tmp.Path; }

    /// <summary>Writes a safetensors file with the given header JSON (as is) and data length.</summary>
    private string RawShard(string name, string headerJson, int dataLength, ulong? declaredHeaderLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var path = _tmp.Combine(name);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes(declaredHeaderLength ?? (ulong)header.Length));
        f.Write(header);
        f.Write(new byte[dataLength]);
        return path;
    }

    private ModelOptException ImportFails(string folder, string expectedId)
    {
        var before = Snapshot(folder);
        var ex = Assert.Throws<ModelOptException>(() => ModelImporter.Import(folder));
        Assert.Equal(expectedId, ex.ErrorId);
        Assert.False(string.IsNullOrEmpty(ex.Path));
        Assert.Equal(before, Snapshot(folder));
        return ex;
    }

    private static string Snapshot(string folder) => !Directory.Exists(folder) ? "" :
        string.Join("\n", Directory.GetFiles(folder).Order().Select(f => $"{f} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f).Ticks}"));

    [Fact]
    public void MissingFolder() => ImportFails(_tmp.Combine("nope"), ErrorIds.CheckpointFolderNotFound);

    [Fact]
    public void MissingConfig()
    {
        RawShard("model.safetensors", "{}", 0);
        var ex = ImportFails(_tmp.Path, ErrorIds.ConfigNotFound);
        Assert.Equal(ErrorKind.ObjectNotFound, ex.Kind);
    }

    [Fact]
    public void InvalidConfigJson()
    {
        File.WriteAllText(_tmp.Combine("config.json"), "{\"model_type\": ");
        var ex = ImportFails(_tmp.Path, ErrorIds.ConfigInvalid);
        Assert.EndsWith("config.json", ex.Path);
    }

    [Fact]
    public void NoWeightFiles() => ImportFails(Config(), ErrorIds.NoWeightFiles);

    [Fact]
    public void InvalidIndexJson()
    {
        Config();
        File.WriteAllText(_tmp.Combine(CheckpointWriter.IndexFileName), "{\"metadata\": {}}");
        ImportFails(_tmp.Path, ErrorIds.IndexInvalid);
    }

    [Fact]
    public void IndexNamesMissingShard()
    {
        Config();
        RawShard("model-00001-of-00002.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        File.WriteAllText(_tmp.Combine(CheckpointWriter.IndexFileName),
            "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}}");
        var ex = ImportFails(_tmp.Path, ErrorIds.IndexShardMissing);
        Assert.EndsWith("model-00002-of-00002.safetensors", ex.Path);
    }

    [Fact]
    public void IndexListsTensorTheShardLacks()
    {
        Config();
        RawShard("model-00001-of-00001.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        File.WriteAllText(_tmp.Combine(CheckpointWriter.IndexFileName),
            "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\", \"b\": \"model-00001-of-00001.safetensors\"}}");
        var ex = ImportFails(_tmp.Path, ErrorIds.IndexHeaderMismatch);
        Assert.Contains("'b'", ex.Message);
    }

    [Fact]
    public void ShardHoldsTensorTheIndexLacks()
    {
        Config();
        RawShard("model-00001-of-00001.safetensors",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"extra\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4);
        File.WriteAllText(_tmp.Combine(CheckpointWriter.IndexFileName), "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\"}}");
        var ex = ImportFails(_tmp.Path, ErrorIds.IndexHeaderMismatch);
        Assert.Contains("'extra'", ex.Message);
    }

    [Fact]
    public void DuplicateTensorAcrossShards()
    {
        Config();
        RawShard("model-00001-of-00002.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        RawShard("model-00002-of-00002.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        var ex = ImportFails(_tmp.Path, ErrorIds.DuplicateTensorName);
        Assert.Contains("'a'", ex.Message);
    }

    [Fact]
    public void TruncatedShard()
    {
        Config();
        var path = RawShard("model.safetensors",
            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4,4],\"data_offsets\":[0,32]},\"b\":{\"dtype\":\"BF16\",\"shape\":[4,4],\"data_offsets\":[32,64]}}", 40);
        var ex = ImportFails(_tmp.Path, ErrorIds.SafetensorsTruncated);
        Assert.Equal(path, ex.Path);
        Assert.Contains("'b'", ex.Message);
    }

    [Fact]
    public void FileShorterThanLengthPrefix()
    {
        Config();
        File.WriteAllBytes(_tmp.Combine("model.safetensors"), [1, 2, 3]);
        ImportFails(_tmp.Path, ErrorIds.SafetensorsTruncated);
    }

    [Fact]
    public void HeaderLengthBeyondFile()
    {
        Config();
        RawShard("model.safetensors", "{}", 0, declaredHeaderLength: 1_000_000);
        ImportFails(_tmp.Path, ErrorIds.SafetensorsHeaderTooLong);
    }

    [Fact]
    public void HeaderNotJson()
    {
        Config();
        RawShard("model.safetensors", "{\"a\": [1, 2", 0);
        ImportFails(_tmp.Path, ErrorIds.SafetensorsHeaderInvalid);
    }

    [Fact]
    public void OverlappingSpans()
    {
        Config();
        RawShard("model.safetensors",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12);
        ImportFails(_tmp.Path, ErrorIds.SafetensorsOverlappingSpans);
    }

    [Fact]
    public void SpanOutOfFile()
    {
        Config();
        RawShard("model.safetensors",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[1000,1008]}}", 16);
        ImportFails(_tmp.Path, ErrorIds.SafetensorsSpanOutOfFile);
    }

    [Fact]
    public void UnknownDType()
    {
        Config();
        RawShard("model.safetensors", "{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1);
        var ex = ImportFails(_tmp.Path, ErrorIds.SafetensorsUnknownDType);
        Assert.Contains("'F4'", ex.Message);
    }

    [Fact]
    public void ShapeSizeMismatch()
    {
        Config();
        RawShard("model.safetensors", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 10);
        var ex = ImportFails(_tmp.Path, ErrorIds.SafetensorsShapeMismatch);
        Assert.Contains("12 bytes", ex.Message);
    }
}
