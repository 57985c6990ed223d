using Orchestrator.Abstractions;

namespace Orchestrator.Grains;

/// <summary>
/// The lease state machine of the pull queue, free of Orleans so it can be tested directly. A cell is
/// Pending → Leased (attempt n) → Done, or back to Pending with attempt n + 1 when its lease expires or its
/// attempt fails, until the spec's attempt limit makes it Failed (with the last reason).
/// </summary>
public sealed class TrialQueue(TimeProvider clock)
{
    public enum CellState { Pending, Leased, Done, Failed }

    public sealed class Entry(CellWork work)
    {
        public CellWork Work { get; } = work;
        public HashSet<string> Sweeps { get; } = new(StringComparer.Ordinal);
        public CellState State { get; set; } = CellState.Pending;
        public int Attempts { get; set; }
        public string? LeaseId { get; set; }
        public string? WorkerId { get; set; }
        public DateTimeOffset ExpiresAt { get; set; }
        public string? LastError { get; set; }
    }

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _pending = new();
    private readonly Dictionary<string, (int Total, int Reused)> _sweeps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _leases = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, Entry> Entries => _entries;

    /// <summary>Adds cells (ignoring ones already queued, running or done); returns how many were newly queued.</summary>
    public int Enqueue(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone)
    {
        var queued = 0;
        foreach (var work in cells)
        {
            if (work.SweepId != sweepId)
            {
                throw new ArgumentException($"cell {work.CellKey} belongs to sweep {work.SweepId}, not {sweepId}", nameof(cells));
            }

            if (_entries.TryGetValue(work.CellKey, out var existing))
            {
                existing.Sweeps.Add(sweepId);
                if (existing.State == CellState.Failed)
                {
                    // A resubmission gives a failed cell a fresh set of attempts.
                    existing.State = CellState.Pending;
                    existing.Attempts = 0;
                    _pending.AddLast(work.CellKey);
                    queued++;
                }

                continue;
            }

            var entry = new Entry(work);
            entry.Sweeps.Add(work.SweepId);
            _entries[work.CellKey] = entry;
            _pending.AddLast(work.CellKey);
            queued++;
        }

        _sweeps[sweepId] = (cells.Count + alreadyDone, alreadyDone);

        return queued;
    }

    public CellLease? Lease(WorkerCapabilities worker)
    {
        ExpireLeases();
        while (_pending.First is { } node)
        {
            _pending.RemoveFirst();
            if (!_entries.TryGetValue(node.Value, out var entry) || entry.State != CellState.Pending)
            {
                continue;
            }

            entry.State = CellState.Leased;
            entry.Attempts++;
            entry.LeaseId = Guid.NewGuid().ToString("N");
            entry.WorkerId = worker.WorkerId;
            entry.ExpiresAt = clock.GetUtcNow() + entry.Work.LeaseTime;
            _leases[entry.LeaseId] = entry.Work.CellKey;
            return new CellLease(entry.LeaseId, entry.Work, entry.Attempts, entry.ExpiresAt);
        }

        return null;
    }

    public bool Renew(string leaseId)
    {
        ExpireLeases();
        if (!TryGetLeased(leaseId, out var entry))
        {
            return false;
        }

        entry.ExpiresAt = clock.GetUtcNow() + entry.Work.LeaseTime;
        return true;
    }

    /// <summary>Ends a lease. A completion for a lease that is no longer current (expired, re-leased) is ignored.</summary>
    public bool Complete(CellCompletion completion)
    {
        ExpireLeases();
        if (!TryGetLeased(completion.LeaseId, out var entry))
        {
            return false;
        }

        _leases.Remove(completion.LeaseId);
        entry.LeaseId = null;
        if (completion.Succeeded)
        {
            entry.State = CellState.Done;
            entry.LastError = null;
        }
        else
        {
            Retry(entry, completion.Error ?? "failed without a reason");
        }

        return true;
    }

    public SweepProgress Progress(string sweepId)
    {
        ExpireLeases();
        _sweeps.TryGetValue(sweepId, out var totals);
        int pending = 0, leased = 0, done = 0, failed = 0;
        foreach (var entry in _entries.Values.Where(e => e.Sweeps.Contains(sweepId)))
        {
            switch (entry.State)
            {
                case CellState.Pending: pending++; break;
                case CellState.Leased: leased++; break;
                case CellState.Done: done++; break;
                case CellState.Failed: failed++; break;
            }
        }

        return new SweepProgress(sweepId, totals.Total, pending, leased, done + totals.Reused, failed, totals.Reused);
    }

    private bool TryGetLeased(string leaseId, out Entry entry)
    {
        entry = null!;
        return _leases.TryGetValue(leaseId, out var key) && _entries.TryGetValue(key, out entry!) &&
               entry.State == CellState.Leased && entry.LeaseId == leaseId;
    }

    private void ExpireLeases()
    {
        var now = clock.GetUtcNow();
        foreach (var entry in _entries.Values.Where(e => e.State == CellState.Leased && e.ExpiresAt <= now).ToList())
        {
            _leases.Remove(entry.LeaseId!);
            entry.LeaseId = null;
            Retry(entry, $"lease expired (worker {entry.WorkerId} stopped renewing it)");
        }
    }

    private void Retry(Entry entry, string reason)
    {
        entry.LastError = reason;
        if (entry.Attempts >= entry.Work.MaxAttempts)
        {
            entry.State = CellState.Failed;
        }
        else
        {
            entry.State = CellState.Pending;
            _pending.AddLast(entry.Work.CellKey);
        }
    }
}
