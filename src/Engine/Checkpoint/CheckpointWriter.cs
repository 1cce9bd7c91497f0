using ModelOptPS.Engine.Safetensors;

namespace ModelOptPS.Engine.Checkpoint;

/// <summary>
/// Streams a set of tensors into one or more safetensors shards in a folder, and writes
/// <c>model.safetensors.index.json</c> when there is more than one shard. One shard file is open at a time.
/// </summary>
public sealed class CheckpointWriter : IDisposable
{
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly string _folder;
    private readonly ShardPlan _plan;
    private int _shard = -1;
    private SafetensorsWriter? _writer;

    public CheckpointWriter(string folder, IReadOnlyList<TensorSpec> tensors, long maxShardBytes = ShardPlan.DefaultMaxShardBytes)
    {
        _folder = folder;
        _plan = new ShardPlan(tensors, maxShardBytes);
        OpenNextShard();
    }

    public ShardPlan Plan => _plan;

    /// <summary>Bytes of tensor data written so far (for progress reporting).</summary>
    public long BytesWritten { get; private set; }

    public void WriteTensor(string name, ReadOnlySpan<byte> bytes)
    {
        Writer().WriteTensor(name, bytes);
        Advance(bytes.Length);
    }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        Writer().Append(bytes);
        Advance(bytes.Length);
    }

    /// <summary>The tensor expected next (across shards), or null when all are written.</summary>
    public TensorSpec? Current => _writer?.Current;

    /// <summary>Completes the last shard and writes the index (multi-shard only). Returns the files written.</summary>
    public IReadOnlyList<string> Complete()
    {
        while (_writer is not null)
        {
            _writer.Complete();
            _writer.Dispose();
            _writer = null;
            if (_shard + 1 < _plan.Shards.Count) OpenNextShard();
        }
        var files = Enumerable.Range(0, _plan.Shards.Count).Select(_plan.FileName).ToList();
        if (_plan.Shards.Count > 1)
        {
            File.WriteAllText(Path.Combine(_folder, IndexFileName), _plan.BuildIndexJson());
            files.Add(IndexFileName);
        }
        return files;
    }

    public void Dispose() => _writer?.Dispose();

    private SafetensorsWriter Writer() =>
        _writer ?? throw new InvalidOperationException("All shards are already complete.");

    private void Advance(int length)
    {
        BytesWritten += length;
        // Roll over to the next shard once this one has every byte (empty tensors included).
        while (_writer is not null && _writer.Current is null && _shard + 1 < _plan.Shards.Count)
        {
            _writer.Complete();
            _writer.Dispose();
            OpenNextShard();
        }
    }

    private void OpenNextShard()
    {
        _shard++;
        _writer = SafetensorsWriter.Create(Path.Combine(_folder, _plan.FileName(_shard)), _plan.Shards[_shard]);
    }
}
