using Orchestrator.Abstractions;
using Orchestrator.Core.Aggregation;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// A sweep's results cache (key: the sweep id). The aggregate is computed by the database (<see cref="IResultStore.GetPointSumsAsync"/>);
/// the grain keeps the last one with the results fingerprint it was computed at (<see cref="IResultStore.GetResultsVersionAsync"/>).
/// Refresh policy: a call within <see cref="CheckInterval"/> of the last check is answered from the cache; otherwise the grain
/// reads the fingerprint (one cheap indexed query) and re-runs the aggregate only when it changed, i.e. when a worker has
/// written a result since. Metric values changed in place (<c>rescore</c>) do not change the fingerprint, so the rescoring
/// command calls <see cref="InvalidateAsync"/>. The database stays the source of truth: a restarted grain simply recomputes.
/// </summary>
public sealed class ResultsGrain(IResultStore store, TimeProvider time) : Grain, IResultsGrain
{
    /// <summary>How stale an answer may be at most.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    private readonly Dictionary<(string Metric, PairedBy By, string A, string B), (ResultsVersion Version, SweepPairs Pairs)> _pairs = new();
    private SweepResults? _results;
    private ResultsVersion? _version;   // the fingerprint _results was computed at
    private ResultsVersion? _latest;    // the fingerprint last read from the database
    private DateTimeOffset _checkedAt;
    private long _counter;

    private string SweepId => this.GetPrimaryKeyString();

    public async Task<SweepResults> GetAsync()
    {
        var version = await CurrentVersionAsync();
        if (_results is null || version != _version)
        {
            var sums = await store.GetPointSumsAsync(SweepId);
            _results = new SweepResults(SweepId, ++_counter, time.GetUtcNow(), sums.Select(ToWire).ToList());
            _version = version;
        }

        return _results;
    }

    public async Task<SweepPairs> GetPairsAsync(string metric, string by, string a, string b)
    {
        var pairedBy = by switch
        {
            "method" => PairedBy.Method,
            "split" => PairedBy.Split,
            _ => throw new ArgumentException($"cannot pair by '{by}': use method or split", nameof(by)),
        };
        var version = await CurrentVersionAsync();
        var key = (metric, pairedBy, a, b);
        if (_pairs.TryGetValue(key, out var cached) && cached.Version == version)
        {
            return cached.Pairs;
        }

        var pairs = await store.GetPairsAsync(SweepId, metric, pairedBy, a, b);
        var result = new SweepPairs(SweepId, metric, by, a, b,
            pairs.Select(p => new ResultPair(p.Dataset, p.Split, p.Method, p.Size, p.Subsample, p.Seed, p.A, p.B)).ToList());
        _pairs[key] = (version, result);
        return result;
    }

    public Task InvalidateAsync()
    {
        _results = null;
        _version = null;
        _latest = null;
        _pairs.Clear();
        return Task.CompletedTask;
    }

    private async Task<ResultsVersion> CurrentVersionAsync()
    {
        var now = time.GetUtcNow();
        if (_latest is not null && now - _checkedAt < CheckInterval)
        {
            return _latest;
        }

        _latest = await store.GetResultsVersionAsync(SweepId);
        _checkedAt = now;
        return _latest;
    }

    private static ResultPoint ToWire(PointSums p) =>
        new(p.Dataset, p.Split, p.Method, p.Size, p.Metric, p.Expected, p.Failed, p.N, p.Sum, p.SumOfSquares, p.Min, p.Max);
}

/// <summary>Conversions between the results wire records and the statistics types.</summary>
public static class ResultsWire
{
    public static PointSums ToSums(this ResultPoint p) =>
        new(p.Dataset, p.Split, p.Method, p.Size, p.Metric, p.Expected, p.Failed, p.N, p.Sum, p.SumOfSquares, p.Min, p.Max);

    public static PairedObservation ToObservation(this ResultPair p) =>
        new(p.Dataset, p.Split, p.Method, p.Size, p.Subsample, p.Seed, p.A, p.B);
}
