using ModelOptPS.Engine.Model;
using ModelOptPS.Fixtures;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Each generated family written once per test class (tiny dims, a few hundred KB) and imported on demand.</summary>
public sealed class GeneratedModels : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly Dictionary<string, string> _written = [];

    public static IEnumerable<object[]> Families => TinyCheckpoints.Families.Select(f => new object[] { f });

    public string Folder(string family)
    {
        lock (_written)
        {
            if (!_written.TryGetValue(family, out var folder))
                _written[family] = folder = TinyCheckpoints.Write(family, _folder.Combine(family));
            return folder;
        }
    }

    public HFModel Import(string family) => ModelImporter.Import(Folder(family));

    public void Dispose() => _folder.Dispose();
}
