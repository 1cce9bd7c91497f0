namespace ModelOptPS.TrainSample;

/// <summary>
/// The deterministic order of training windows: epoch after epoch, the train stream is cut at a seeded offset in
/// [0, length) (so window boundaries move between epochs) and the windows are shuffled with the same seed's generator.
/// </summary>
internal sealed class BatchSchedule
{
    private readonly TokenStream _stream;
    private readonly int _length;
    private readonly int _batch;
    private readonly Random _random;
    private readonly Queue<long[]> _pending = new();

    public BatchSchedule(TokenStream stream, int length, int batch, int seed)
    {
        _stream = stream;
        _length = length;
        _batch = batch;
        _random = new Random(seed);
    }

    /// <summary>The pass over the train stream being read (0 for the first).</summary>
    public int Epoch { get; private set; } = -1;

    /// <summary>The next <c>batch</c> windows, each <c>length + 1</c> tokens.</summary>
    public long[][] Next()
    {
        var batch = new long[_batch][];
        for (int i = 0; i < _batch; i++)
        {
            if (_pending.Count == 0) StartEpoch();
            batch[i] = _pending.Dequeue();
        }
        return batch;
    }

    private void StartEpoch()
    {
        Epoch++;
        var windows = _stream.Windows(_length, offset: Epoch == 0 ? 0 : _random.Next(_length));
        _random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(windows));
        foreach (var w in windows) _pending.Enqueue(w);
    }
}
