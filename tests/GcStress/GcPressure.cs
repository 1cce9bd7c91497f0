namespace ModelOptPS.GcStress;

/// <summary>
/// A thread that collects and runs finalizers back to back, with some allocation churn between rounds, so that any
/// object the main thread no longer references (a TorchSharp Scalar whose handle is in a native call) is finalized
/// within about a millisecond.
/// </summary>
internal sealed class GcPressure : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;

    public GcPressure()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "gc-pressure" };
        _thread.Start();
    }

    public int Rounds { get; private set; }

    private void Run()
    {
        var churn = new object[256];
        while (!_stop)
        {
            for (int i = 0; i < churn.Length; i++) churn[i] = new byte[64 + i];
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Rounds++;
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
