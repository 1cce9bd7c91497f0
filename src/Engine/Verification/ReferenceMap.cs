using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// The source checkpoint seen through the export's names: every source tensor under its own name, and each fused
/// expert tensor of the language model also under the per-expert names the contract splits it into
/// (<c>experts.gate_up_proj [E, 2I, H]</c>: expert e's gate is rows [0, I), up rows [I, 2I);
/// <c>experts.down_proj [E, H, I]</c>: expert e's down is <c>[e]</c>). Fused tensors under <c>mtp.</c> and
/// <c>model.visual.</c> are copied whole, so they only have their own name.
/// </summary>
internal sealed class ReferenceMap
{
    private readonly CheckpointReader _source;
    private readonly Dictionary<string, SourceSlice> _slices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _splits = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _expertCounts = new(StringComparer.Ordinal);
    private readonly MergedLayerTable _layers;

    public ReferenceMap(CheckpointReader source)
    {
        _source = source;
        _layers = MergedLayerTable.For(source.Config);
        foreach (var tensor in source.Tensors.Values)
        {
            _slices[tensor.Name] = new SourceSlice(tensor.Name, tensor, 0, tensor.Info.Shape, $"source '{tensor.Name}'");
            if (IsSplitOnExport(tensor)) Split(tensor);
        }
        foreach (var name in _slices.Keys)
        {
            if (ExpertSets.SplitExpert(name[..Math.Max(0, name.LastIndexOf('.'))]) is { } e)
                _expertCounts[e.Experts] = Math.Max(_expertCounts.GetValueOrDefault(e.Experts), e.Expert + 1);
        }
    }

    public string Folder => _source.Folder;

    public ModelConfig Config => _source.Config;

    public bool TryGet(string name, out SourceSlice slice) => _slices.TryGetValue(name, out slice!);

    /// <summary>
    /// Source tensors (or, for split fused experts, their per-expert parts) that have no counterpart in the export.
    /// <paramref name="present"/> says whether the export has a tensor for a source name.
    /// </summary>
    public IEnumerable<SourceSlice> Missing(Func<string, bool> present)
    {
        foreach (var tensor in _source.Tensors.Values)
        {
            if (present(tensor.Name)) continue;
            if (_splits.TryGetValue(tensor.Name, out var parts))
            {
                foreach (var part in parts.Where(p => !present(p))) yield return _slices[part];
            }
            else
            {
                yield return _slices[tensor.Name];
            }
        }
    }

    /// <summary>
    /// Source slices a mix-up would put in place of <paramref name="name"/>'s own: the other shards of its merged
    /// layer and the same projection of the other experts, where the shapes agree.
    /// </summary>
    public IEnumerable<SourceSlice> Confusable(string name)
    {
        if (!_slices.TryGetValue(name, out var own)) yield break;
        int dot = name.LastIndexOf('.');
        if (dot < 0) yield break;
        string module = name[..dot], parameter = name[(dot + 1)..];
        var names = _layers.Siblings(module).Select(s => $"{s}.{parameter}").ToList();
        if (ExpertSets.SplitExpert(module) is { } e)
        {
            for (int other = 0; other < _expertCounts.GetValueOrDefault(e.Experts); other++)
                if (other != e.Expert) names.Add($"{e.Experts}.{other}.{e.Projection}.{parameter}");
        }
        foreach (var candidate in names)
        {
            if (_slices.TryGetValue(candidate, out var slice) && slice.Shape.SequenceEqual(own.Shape) && slice.DType == own.DType)
                yield return slice;
        }
    }

    private static bool IsSplitOnExport(TensorRef tensor)
    {
        string module = tensor.Name[..Math.Max(0, tensor.Name.LastIndexOf('.'))];
        string leaf = ModuleClassifier.LastComponent(tensor.Name);
        return tensor.Info.Rank == 3 && leaf is "gate_up_proj" or "down_proj"
            && ModuleClassifier.LastComponent(module) == "experts"
            && ModuleClassifier.Section(module) == ModelSection.Text
            && (leaf == "down_proj" || tensor.Info.Shape[1] % 2 == 0);
    }

    private void Split(TensorRef tensor)
    {
        var shape = tensor.Info.Shape;
        string experts = tensor.Name[..tensor.Name.LastIndexOf('.')];
        long size = Safetensors.DTypes.SizeOf(tensor.Info.DType);
        long expertBytes = shape[1] * shape[2] * size;
        bool gateUp = ModuleClassifier.LastComponent(tensor.Name) == "gate_up_proj";
        var parts = new List<string>();
        for (int e = 0; e < shape[0]; e++)
        {
            if (gateUp)
            {
                long half = shape[1] / 2;
                long[] partShape = [half, shape[2]];
                Add($"{experts}.{e}.gate_proj.weight", e * expertBytes, partShape, $"rows [0, {half}) of source '{tensor.Name}'[{e}]");
                Add($"{experts}.{e}.up_proj.weight", e * expertBytes + half * shape[2] * size, partShape,
                    $"rows [{half}, {shape[1]}) of source '{tensor.Name}'[{e}]");
            }
            else
            {
                Add($"{experts}.{e}.down_proj.weight", e * expertBytes, [shape[1], shape[2]], $"source '{tensor.Name}'[{e}]");
            }
        }
        _splits[tensor.Name] = parts;

        void Add(string name, long offset, long[] partShape, string origin)
        {
            _slices[name] = new SourceSlice(name, tensor, offset, partShape, origin);
            parts.Add(name);
        }
    }
}
