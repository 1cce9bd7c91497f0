using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Model;

/// <summary>Builds the module tree of a checkpoint from its tensor names (header data only).</summary>
public static class InventoryBuilder
{
    /// <summary>Groups tensors into modules (<c>a.b.c.weight</c> is parameter <c>weight</c> of <c>a.b.c</c>).</summary>
    public static IReadOnlyList<ModelModule> Build(IEnumerable<TensorInfo> tensors, ArchitectureSpec spec)
    {
        var groups = new Dictionary<string, Dictionary<string, TensorInfo>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var t in tensors)
        {
            int dot = t.Name.LastIndexOf('.');
            string module = dot < 0 ? "" : t.Name[..dot];
            string parameter = dot < 0 ? t.Name : t.Name[(dot + 1)..];
            if (!groups.TryGetValue(module, out var parameters))
            {
                groups[module] = parameters = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
                order.Add(module);
            }
            parameters[parameter] = t;
        }
        return order
            .Order(ModuleNameComparer.Instance)
            .Select(name => new ModelModule(
                name,
                ModuleClassifier.Kind(name, groups[name]),
                ModuleClassifier.Section(name),
                ModuleClassifier.Layer(name),
                ModuleClassifier.Expert(name),
                ModuleClassifier.Role(name, spec),
                groups[name]))
            .ToList();
    }

    /// <summary>Orders module names with numeric components compared as numbers (layers.2 before layers.10).</summary>
    private sealed class ModuleNameComparer : IComparer<string>
    {
        public static readonly ModuleNameComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            var a = (x ?? "").Split('.');
            var b = (y ?? "").Split('.');
            for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
            {
                int c = long.TryParse(a[i], out long na) && long.TryParse(b[i], out long nb)
                    ? na.CompareTo(nb)
                    : string.CompareOrdinal(a[i], b[i]);
                if (c != 0) return c;
            }
            return a.Length.CompareTo(b.Length);
        }
    }
}
