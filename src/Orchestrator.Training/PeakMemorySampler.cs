namespace Orchestrator.Training;

/// <summary>Samples the process's resident set every 50 ms until stopped; reports the largest value seen.</summary>
internal sealed class PeakMemorySampler : IDisposable
{
    private readonly Timer _timer;
    private long _peak;

    public PeakMemorySampler()
    {
        _peak = Environment.WorkingSet;
        _timer = new Timer(_ => Sample(), null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
    }

    public long Stop()
    {
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        Sample();
        return Interlocked.Read(ref _peak);
    }

    /// <summary>The largest value so far (sampling goes on).</summary>
    public long Peak
    {
        get
        {
            Sample();
            return Interlocked.Read(ref _peak);
        }
    }

    public void Dispose() => _timer.Dispose();

    private void Sample()
    {
        long now = Environment.WorkingSet;
        long seen;
        while (now > (seen = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, seen) != seen)
        {
        }
    }
}
