using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Checkpoint;

/// <summary>Where a tensor lives: its shard and its header entry.</summary>
public sealed record TensorRef(SafetensorsFile File, TensorInfo Info)
{
    public string Name => Info.Name;
}

/// <summary>
/// A Hugging Face checkpoint folder opened for reading: config.json, the shard index (or the single
/// <c>model.safetensors</c>), and every shard's validated header. Index and headers must agree exactly and no
/// tensor may appear twice. Only headers are read; tensor bytes are memory-mapped on demand. Read-only: nothing
/// is ever written into the folder.
/// </summary>
public sealed class CheckpointReader : IDisposable
{
    private readonly List<SafetensorsFile> _shards;
    private readonly Dictionary<string, TensorRef> _tensors;

    private CheckpointReader(string folder, ModelConfig config, CheckpointIndex? index,
        List<SafetensorsFile> shards, Dictionary<string, TensorRef> tensors)
    {
        Folder = folder;
        Config = config;
        Index = index;
        _shards = shards;
        _tensors = tensors;
    }

    public string Folder { get; }

    public ModelConfig Config { get; }

    /// <summary>The shard index, or null for a single-file checkpoint.</summary>
    public CheckpointIndex? Index { get; }

    public IReadOnlyList<SafetensorsFile> Shards => _shards;

    /// <summary>Every tensor, in shard order then header order.</summary>
    public IReadOnlyDictionary<string, TensorRef> Tensors => _tensors;

    /// <summary>Total bytes of the shard files on disk.</summary>
    public long SizeOnDisk => _shards.Sum(s => s.Header.FileLength);

    public TensorRef GetTensor(string name) =>
        _tensors.TryGetValue(name, out var t)
            ? t
            : throw new ModelOptException(ErrorIds.TensorNotFound, ErrorKind.ObjectNotFound,
                $"The checkpoint '{Folder}' has no tensor '{name}'.", Folder);

    public static CheckpointReader Open(string folder)
    {
        folder = RequireFolder(folder);
        var config = ModelConfig.Load(Path.Combine(folder, ModelConfig.FileName));
        var indexPath = Path.Combine(folder, CheckpointWriter.IndexFileName);
        var index = File.Exists(indexPath) ? CheckpointIndex.Load(indexPath) : null;
        var shardFiles = index?.ShardFiles.ToList() ?? FindUnindexedShards(folder);

        var shards = new List<SafetensorsFile>();
        try
        {
            var tensors = new Dictionary<string, TensorRef>(StringComparer.Ordinal);
            foreach (var fileName in shardFiles)
            {
                var path = Path.Combine(folder, fileName);
                if (!File.Exists(path))
                    throw new ModelOptException(ErrorIds.IndexShardMissing, ErrorKind.ObjectNotFound,
                        $"The shard index '{indexPath}' names '{fileName}' (for tensor '{index!.WeightMap.First(kv => kv.Value == fileName).Key}'), but that file is not in the folder.", path);
                var shard = SafetensorsFile.Open(path);
                shards.Add(shard);
                foreach (var info in shard.Tensors.Values)
                {
                    if (tensors.TryGetValue(info.Name, out var existing))
                        throw new ModelOptException(ErrorIds.DuplicateTensorName, ErrorKind.InvalidData,
                            $"Tensor '{info.Name}' is in both '{existing.File.Path}' and '{path}'; a checkpoint must hold each tensor once.", path);
                    tensors.Add(info.Name, new TensorRef(shard, info));
                }
            }
            if (index is not null) CheckIndexAgreesWithHeaders(index, tensors);
            return new CheckpointReader(folder, config, index, shards, tensors);
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    /// <summary>The full path of an existing checkpoint folder, or <see cref="ErrorIds.CheckpointFolderNotFound"/>.</summary>
    public static string RequireFolder(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
            throw new ModelOptException(ErrorIds.CheckpointFolderNotFound, ErrorKind.ObjectNotFound,
                File.Exists(folder)
                    ? $"'{folder}' is a file; give the checkpoint folder that holds config.json and the safetensors files."
                    : $"The checkpoint folder '{folder}' does not exist.", folder);
        return folder;
    }

    private static List<string> FindUnindexedShards(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*.safetensors").Select(Path.GetFileName).OfType<string>()
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new ModelOptException(ErrorIds.NoWeightFiles, ErrorKind.ObjectNotFound,
                $"The checkpoint folder '{folder}' has no model.safetensors, no {CheckpointWriter.IndexFileName} and no other *.safetensors file.", folder);
        return files;
    }

    private static void CheckIndexAgreesWithHeaders(CheckpointIndex index, Dictionary<string, TensorRef> tensors)
    {
        foreach (var (name, file) in index.WeightMap)
        {
            if (!tensors.TryGetValue(name, out var t))
                throw Mismatch(index, Path.Combine(Path.GetDirectoryName(index.Path)!, file),
                    $"maps tensor '{name}' to '{file}', but no shard header holds that tensor");
            if (Path.GetFileName(t.File.Path) != file)
                throw Mismatch(index, t.File.Path, $"maps tensor '{name}' to '{file}', but it is in '{Path.GetFileName(t.File.Path)}'");
        }
        foreach (var t in tensors.Values)
        {
            if (!index.WeightMap.ContainsKey(t.Name))
                throw Mismatch(index, t.File.Path, $"does not list tensor '{t.Name}', which is in '{Path.GetFileName(t.File.Path)}'");
        }
    }

    private static ModelOptException Mismatch(CheckpointIndex index, string shardPath, string what) =>
        new(ErrorIds.IndexHeaderMismatch, ErrorKind.InvalidData, $"The shard index '{index.Path}' {what}.", shardPath);

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
