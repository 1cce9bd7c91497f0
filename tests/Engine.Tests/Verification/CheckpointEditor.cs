using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Tests.Verification;

/// <summary>
/// Corrupts a small checkpoint in place, one way at a time: rewrites its shards (each tensor stays in its shard
/// unless the edit says otherwise) and rebuilds the index to match, or edits a config or index file directly.
/// </summary>
internal sealed class CheckpointEditor(string folder)
{
    public string Folder => folder;

    /// <summary>Loads every tensor, lets <paramref name="edit"/> change the list, and writes it back.</summary>
    public void Tensors(Action<List<StoredTensor>> edit, bool rebuildIndex = true)
    {
        var tensors = new List<StoredTensor>();
        using (var reader = CheckpointReader.Open(folder))
        {
            foreach (var t in reader.Tensors.Values)
                tensors.Add(new StoredTensor(t.Name, t.Info.DType, t.Info.Shape, t.File.ToArray(t.Info)) { Shard = Path.GetFileName(t.File.Path) });
        }
        edit(tensors);
        foreach (var shard in Directory.EnumerateFiles(folder, "*.safetensors")) File.Delete(shard);
        foreach (var shard in tensors.GroupBy(t => t.Shard))
        {
            var list = shard.ToList();
            using var writer = SafetensorsWriter.Create(Path.Combine(folder, shard.Key), list.Select(t => t.Spec).ToList());
            foreach (var t in list) writer.Append(t.Data);
            writer.Complete();
        }
        if (!rebuildIndex || !File.Exists(IndexPath)) return;
        var map = new JsonObject();
        foreach (var t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal)) map[t.Name] = t.Shard;
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = tensors.Sum(t => (long)t.Data.Length) }, ["weight_map"] = map };
        File.WriteAllText(IndexPath, index.ToJsonString());
    }

    /// <summary>Replaces one tensor's data (and optionally its dtype and shape).</summary>
    public void Tensor(string name, Func<StoredTensor, StoredTensor> change) =>
        Tensors(list =>
        {
            int i = list.FindIndex(t => t.Name == name);
            Assert.True(i >= 0, $"no tensor '{name}'");
            list[i] = change(list[i]) with { Shard = list[i].Shard };
        });

    public void Scalar(string name, float value) =>
        Tensor(name, t =>
        {
            var data = new byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(data, value);
            return t with { Data = data };
        });

    public float ReadScalar(string name)
    {
        using var reader = CheckpointReader.Open(folder);
        var t = reader.GetTensor(name);
        return BinaryPrimitives.ReadSingleLittleEndian(t.File.ToArray(t.Info));
    }

    /// <summary>Replaces a module's tensors (NVFP4 in either layout) by its source weight, in the shard they were in.</summary>
    public void RestoreSource(string module, string source)
    {
        StoredTensor weight;
        using (var reader = CheckpointReader.Open(source))
        {
            var t = reader.GetTensor(module + ".weight");
            weight = new StoredTensor(t.Name, t.Info.DType, t.Info.Shape, t.File.ToArray(t.Info));
        }
        Tensors(list =>
        {
            string shard = list.First(t => t.Name.StartsWith(module + ".", StringComparison.Ordinal)).Shard;
            list.RemoveAll(t => t.Name.StartsWith(module + ".", StringComparison.Ordinal));
            list.Add(weight with { Shard = shard });
        });
    }

    /// <summary>Exchanges the data of every tensor of two modules (same shapes).</summary>
    public void SwapModules(string a, string b) =>
        Tensors(list =>
        {
            foreach (var t in list.Where(t => t.Name.StartsWith(a + ".", StringComparison.Ordinal)).ToList())
            {
                int i = list.IndexOf(t), j = list.FindIndex(o => o.Name == b + t.Name[a.Length..]);
                (list[i], list[j]) = (list[i] with { Data = list[j].Data }, list[j] with { Data = list[i].Data });
            }
        });

    public void Json(string file, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, file);
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root);
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Edits the exclusion list in every place the layout keeps one.</summary>
    public void Exclusions(Action<JsonArray> edit)
    {
        if (File.Exists(Path.Combine(folder, "hf_quant_config.json")))
            Json("hf_quant_config.json", root => edit(root["quantization"]!["exclude_modules"]!.AsArray()));
        Json("config.json", root => edit(root["quantization_config"]!["ignore"]!.AsArray()));
    }

    public string IndexPath => Path.Combine(folder, CheckpointWriter.IndexFileName);

    public string ShardOf(string tensor)
    {
        using var reader = CheckpointReader.Open(folder);
        return Path.GetFileName(reader.GetTensor(tensor).File.Path);
    }
}
