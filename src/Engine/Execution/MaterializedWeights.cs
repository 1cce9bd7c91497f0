using static TorchSharp.torch;

namespace ModelOptPS.Engine.Execution;

/// <summary>The weight tensors of one unit (a decoder layer, or the head): freed together, counted in <see cref="WeightMemory"/>.</summary>
internal sealed class MaterializedWeights(WeightMemory memory) : IDisposable
{
    private readonly List<Tensor> _tensors = [];
    private long _bytes;

    public Tensor Own(Tensor tensor)
    {
        tensor.DetachFromDisposeScope();
        _tensors.Add(tensor);
        long bytes = tensor.NumberOfElements * tensor.ElementSize;
        _bytes += bytes;
        memory.Add(bytes);
        return tensor;
    }

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        _tensors.Clear();
        memory.Remove(_bytes);
        _bytes = 0;
    }
}
