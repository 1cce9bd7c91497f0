using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// A checkpoint folder opened leniently: where <see cref="CheckpointReader"/> stops at the first problem, this records
/// each problem as a failed check (with the reader's own error id and message) and keeps everything still readable, so
/// one truncated shard or one bad index entry does not hide the rest of the checkpoint.
/// </summary>
internal sealed class CheckpointInventory : IDisposable
{
    private const string SingleShardName = "model.safetensors";

    private readonly List<SafetensorsFile> _shards = [];
    private readonly Dictionary<string, TensorRef> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unreadable = new(StringComparer.Ordinal);

    private CheckpointInventory(string folder) => Folder = folder;

    public string Folder { get; }

    public ModelConfig? Config { get; private set; }

    /// <summary>Every tensor of every readable shard, in shard then header order.</summary>
    public IReadOnlyDictionary<string, TensorRef> Tensors => _tensors;

    /// <summary>Tensors the index names in a shard that is missing or malformed, with why they cannot be read.</summary>
    public IReadOnlyDictionary<string, string> Unreadable => _unreadable;

    public int ShardCount => _shards.Count;

    /// <summary>False when some shard could not be read, so the tensor list may be incomplete.</summary>
    public bool Complete { get; private set; } = true;

    public static CheckpointInventory Open(string folder, CheckList checks)
    {
        var inventory = new CheckpointInventory(folder);
        try
        {
            inventory.Read(checks);
            return inventory;
        }
        catch
        {
            inventory.Dispose();
            throw;
        }
    }

    private void Read(CheckList checks)
    {
        var configCheck = checks.Get(CheckScope.Config, ModelConfig.FileName);
        try
        {
            Config = ModelConfig.Load(Path.Combine(Folder, ModelConfig.FileName));
        }
        catch (ModelOptException ex)
        {
            configCheck.Fail(ex.ErrorId, ex.Message);
        }

        var indexCheck = checks.Get(CheckScope.Index, CheckpointWriter.IndexFileName);
        var index = LoadIndex(indexCheck);
        var onDisk = Directory.EnumerateFiles(Folder, "*.safetensors").Select(Path.GetFileName).OfType<string>()
            .Order(StringComparer.Ordinal).ToList();
        var toOpen = index is null ? ChooseUnindexed(onDisk, checks, indexCheck) : ChooseIndexed(index, onDisk, checks, indexCheck);
        foreach (var file in toOpen) OpenShard(file, index, checks.Get(CheckScope.Shard, file));
        if (index is not null) CompareIndexWithHeaders(index, indexCheck);
    }

    private CheckpointIndex? LoadIndex(CheckBuilder check)
    {
        string path = Path.Combine(Folder, CheckpointWriter.IndexFileName);
        if (!File.Exists(path))
        {
            check.Expected = "present when there is more than one shard";
            check.Found = "absent";
            return null;
        }
        check.Expected = "every tensor of every shard, each in its shard";
        try
        {
            var index = CheckpointIndex.Load(path);
            check.Found = $"{index.WeightMap.Count} tensors in {index.ShardFiles.Count()} shards";
            return index;
        }
        catch (ModelOptException ex)
        {
            check.Found = "unreadable";
            check.Fail(ex.ErrorId, ex.Message);
            return null;
        }
    }

    private List<string> ChooseUnindexed(List<string> onDisk, CheckList checks, CheckBuilder indexCheck)
    {
        if (onDisk.Count == 0)
        {
            checks.Get(CheckScope.Checkpoint, Path.GetFileName(Folder)).Fail(ErrorIds.NoWeightFiles,
                $"The folder has no model.safetensors, no {CheckpointWriter.IndexFileName} and no other *.safetensors file.");
            Complete = false;
        }
        else if (onDisk.Count > 1 || onDisk[0] != SingleShardName)
        {
            indexCheck.Fail(VerificationIds.IndexMissing,
                $"The folder holds {string.Join(", ", onDisk.Select(f => $"'{f}'"))} but no {CheckpointWriter.IndexFileName}: " +
                $"transformers and the engines load a lone '{SingleShardName}' or an indexed set of shards.");
        }
        else
        {
            indexCheck.Note = $"single shard '{SingleShardName}' needs no index";
        }
        return onDisk;
    }

    private List<string> ChooseIndexed(CheckpointIndex index, List<string> onDisk, CheckList checks, CheckBuilder indexCheck)
    {
        var present = new List<string>();
        foreach (var file in index.ShardFiles)
        {
            if (onDisk.Contains(file))
            {
                present.Add(file);
                continue;
            }
            var names = index.WeightMap.Where(kv => kv.Value == file).Select(kv => kv.Key).ToList();
            foreach (var name in names) _unreadable[name] = $"the index puts it in '{file}', which is not in the folder";
            indexCheck.Fail(ErrorIds.IndexShardMissing,
                $"The index maps {Text.Count(names.Count, "tensor")} ({Text.List(names)}) to '{file}', but that file is not in the folder.");
            Complete = false;
        }
        foreach (var stray in onDisk.Except(index.ShardFiles, StringComparer.Ordinal))
        {
            checks.Get(CheckScope.Shard, stray).Fail(VerificationIds.ShardNotInIndex,
                $"'{stray}' is not named by {CheckpointWriter.IndexFileName}, so the engines never read it (a leftover of an earlier export?).");
        }
        return present;
    }

    private void OpenShard(string file, CheckpointIndex? index, CheckBuilder check)
    {
        check.Expected = "a valid safetensors file: contiguous tensor data, no gaps, format 'pt'";
        SafetensorsFile shard;
        try
        {
            shard = SafetensorsFile.Open(Path.Combine(Folder, file));
        }
        catch (Exception ex) when (ex is ModelOptException or IOException or UnauthorizedAccessException)
        {
            string id = ex is ModelOptException m ? m.ErrorId : VerificationIds.ShardUnreadable;
            check.Found = "unreadable";
            check.Fail(id, ex.Message);
            Complete = false;
            foreach (var name in index?.WeightMap.Where(kv => kv.Value == file).Select(kv => kv.Key) ?? [])
                _unreadable[name] = $"its shard '{file}' is unreadable ({id})";
            return;
        }
        _shards.Add(shard);
        check.Found = $"{Text.Count(shard.Tensors.Count, "tensor")}, {shard.Header.FileLength} bytes";
        check.Note = "header valid, data contiguous";
        CheckLayout(shard.Header, check);
        foreach (var info in shard.Tensors.Values)
        {
            if (_tensors.TryGetValue(info.Name, out var first))
            {
                check.Fail(ErrorIds.DuplicateTensorName,
                    $"Tensor '{info.Name}' is also in '{Path.GetFileName(first.File.Path)}'; a checkpoint holds each tensor once.");
                continue;
            }
            _tensors.Add(info.Name, new TensorRef(shard, info));
        }
    }

    /// <summary>
    /// What the header validation leaves open but loaders refuse: the safetensors library wants tensor data contiguous
    /// from offset 0 to the end of the file, and transformers refuses metadata without <c>format: pt</c>.
    /// </summary>
    private static void CheckLayout(SafetensorsHeader header, CheckBuilder check)
    {
        if (header.Metadata.Count > 0 && (!header.Metadata.TryGetValue("format", out var format) || format != "pt"))
            check.Fail(VerificationIds.ShardLayout,
                $"__metadata__ has format '{format ?? "(none)"}'; transformers refuses a shard whose metadata does not say 'pt'.");
        long expected = 0;
        foreach (var t in header.Tensors.Values.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin))
        {
            if (t.Begin != expected)
                check.Fail(VerificationIds.ShardLayout,
                    $"{t.Begin - expected} bytes of gap before tensor '{t.Name}' (offset {t.Begin}); the safetensors library refuses gaps.");
            expected = t.End;
        }
        if (expected != header.DataLength)
            check.Fail(VerificationIds.ShardLayout,
                $"{header.DataLength - expected} bytes follow the last tensor's data; the safetensors library refuses trailing bytes.");
    }

    private void CompareIndexWithHeaders(CheckpointIndex index, CheckBuilder check)
    {
        var missing = new List<string>();
        var elsewhere = new List<string>();
        foreach (var (name, file) in index.WeightMap)
        {
            if (_unreadable.ContainsKey(name)) continue;
            if (!_tensors.TryGetValue(name, out var tensor)) missing.Add($"'{name}' → '{file}'");
            else if (Path.GetFileName(tensor.File.Path) != file) elsewhere.Add($"'{name}' → '{file}' (it is in '{Path.GetFileName(tensor.File.Path)}')");
        }
        var unlisted = _tensors.Values.Where(t => !index.WeightMap.ContainsKey(t.Name))
            .Select(t => $"'{t.Name}' (in '{Path.GetFileName(t.File.Path)}')").ToList();
        if (missing.Count > 0)
            check.Fail(VerificationIds.IndexTensorMissing,
                $"The index maps {Text.Count(missing.Count, "tensor")} to a shard that does not hold it: {Text.List(missing, quote: false)}.");
        if (elsewhere.Count > 0)
            check.Fail(VerificationIds.IndexWrongShard,
                $"The index names the wrong shard for {Text.Count(elsewhere.Count, "tensor")}: {Text.List(elsewhere, quote: false)}.");
        if (unlisted.Count > 0)
            check.Fail(VerificationIds.TensorNotInIndex,
                $"{Text.Count(unlisted.Count, "tensor")} present in no index entry, which the engines never load: {Text.List(unlisted, quote: false)}.");
        long total = _tensors.Values.Sum(t => t.Info.ByteLength);
        if (Complete && index.TotalSize != total)
            check.Warn(VerificationIds.IndexTotalSize,
                $"metadata.total_size is {index.TotalSize?.ToString() ?? "missing"} but the shards hold {total} bytes of tensor data.");
        if (check.Note.Length == 0) check.Note = "index and shard headers agree";
    }

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
    }
}
