using ModelOptPS.Engine.Execution;
using static TorchSharp.torch;

namespace ModelOptPS.Engine.Tests.Execution;

/// <summary>Records what a run shows an observer: per name, the shapes seen; per experts container, the routing.</summary>
internal sealed class RecordingObserver : IActivationObserver
{
    public Dictionary<string, List<long[]>> Inputs { get; } = [];

    public Dictionary<string, List<long[]>> Routing { get; } = [];

    /// <summary>Every observed input, in order, with its values (for comparing two runs).</summary>
    public List<(string Name, float[] Values)> Values { get; } = [];

    public bool KeepValues { get; init; }

    /// <summary>The dtypes of every observed input.</summary>
    public HashSet<ScalarType> DTypes { get; } = [];

    public void ObserveInput(string inputQuantizerName, Tensor input)
    {
        DTypes.Add(input.dtype);
        Add(Inputs, inputQuantizerName, input.shape);
        if (KeepValues) Values.Add((inputQuantizerName, input.to(ScalarType.Float32).contiguous().data<float>().ToArray()));
    }

    public void ObserveRouting(string expertsContainer, Tensor expertIndices)
    {
        Add(Routing, expertsContainer, expertIndices.shape);
        Assert.Equal(ScalarType.Int64, expertIndices.dtype);
    }

    /// <summary>Total rows (tokens) seen under a name.</summary>
    public long Rows(string name) => Inputs.TryGetValue(name, out var shapes) ? shapes.Sum(s => s[0]) : 0;

    private static void Add(Dictionary<string, List<long[]>> into, string name, long[] shape)
    {
        if (!into.TryGetValue(name, out var list)) into[name] = list = [];
        list.Add(shape);
    }
}
