using Orchestrator.Abstractions;

namespace Orchestrator.Grains;

/// <summary>
/// The lease state machine of the pull queue, free of Orleans so it can be tested directly. A cell is
/// Pending → Leased (attempt n) → Done, or back to Pending with attempt n + 1 when its lease expires or its
/// attempt fails, until the spec's attempt limit makes it Failed (with the last reason). A cell of a later stage starts
/// Waiting and becomes Pending when every cell it needs is Done, or Blocked (with the reason) when one of them failed;
/// a blocked cell waits until <c>rerun-failed</c> gives its dependency new attempts. Attempt counts are
/// reported through <see cref="TakeChangedAttempts"/> so the grain can persist them; after a restart the queue is
/// rebuilt from the database with <see cref="Load"/>.
/// </summary>
public sealed class TrialQueue(TimeProvider clock)
{
    /// <summary>
    /// Waiting: a later stage's cell whose dependencies have not all succeeded; Blocked: one of its dependencies failed (or is
    /// blocked) — it waits for <c>rerun-failed</c>, it is neither failed nor skipped.
    /// </summary>
    public enum QueueState { Pending, Leased, Done, Failed, Waiting, Blocked }

    public sealed class Entry(CellWork work)
    {
        public CellWork Work { get; } = work;
        public HashSet<string> Sweeps { get; } = new(StringComparer.Ordinal);
        public QueueState State { get; set; } = QueueState.Pending;
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
    private readonly HashSet<string> _changedAttempts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _dependants = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, Entry> Entries => _entries;

    public bool HasSweep(string sweepId) => _sweeps.ContainsKey(sweepId);

    /// <summary>Adds cells (ignoring ones already queued, running or done); returns how many were newly queued.</summary>
    public int Enqueue(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone)
    {
        var queued = cells.Count(work => Add(sweepId, work, attempts: 0, lastError: null, resetFailed: true));
        _sweeps[sweepId] = (cells.Count + alreadyDone, alreadyDone);
        SettleDependencies();
        return queued;
    }

    /// <summary>
    /// Rebuilds a sweep from the database: <paramref name="unfinished"/> are its cells without a successful result
    /// (with their recorded attempts and last failure); the others count as done. A cell whose attempts are used
    /// up stays Failed unless <paramref name="resetFailed"/>. Returns how many cells are pending afterwards.
    /// </summary>
    public int Load(string sweepId, int total, IReadOnlyList<(CellWork Work, int Attempts, string? LastError)> unfinished, bool resetFailed)
    {
        foreach (var (work, attempts, lastError) in unfinished)
        {
            Add(sweepId, work, attempts, lastError, resetFailed);
        }

        _sweeps[sweepId] = (total, total - unfinished.Count);
        SettleDependencies();
        return _entries.Values.Count(e => e.State is QueueState.Pending or QueueState.Waiting && e.Sweeps.Contains(sweepId));
    }

    private bool Add(string sweepId, CellWork work, int attempts, string? lastError, bool resetFailed)
    {
        if (work.SweepId != sweepId)
        {
            throw new ArgumentException($"cell {work.CellKey} belongs to sweep {work.SweepId}, not {sweepId}");
        }

        if (_entries.TryGetValue(work.CellKey, out var existing))
        {
            existing.Sweeps.Add(sweepId);
            if (existing.State == QueueState.Failed && resetFailed)
            {
                existing.Attempts = 0;
                _changedAttempts.Add(work.CellKey);
                MakeRunnable(existing);
                return true;
            }

            return false;
        }

        var entry = new Entry(work) { Attempts = resetFailed ? 0 : attempts, LastError = lastError };
        entry.Sweeps.Add(sweepId);
        _entries[work.CellKey] = entry;
        foreach (var dependency in work.Dependencies)
        {
            if (!_dependants.TryGetValue(dependency, out var list))
            {
                _dependants[dependency] = list = [];
            }

            list.Add(work.CellKey);
        }

        if (resetFailed && attempts > 0)
        {
            _changedAttempts.Add(work.CellKey);
        }

        if (entry.Attempts >= work.MaxAttempts)
        {
            entry.State = QueueState.Failed;
            entry.LastError ??= $"all {work.MaxAttempts} attempts used (the last lease expired)";
            return false;
        }

        MakeRunnable(entry);
        return true;
    }

    /// <summary>Pending (in the lease order) when every dependency has succeeded; else Waiting until they have.</summary>
    private void MakeRunnable(Entry entry)
    {
        if (entry.Work.Dependencies.Count > 0)
        {
            entry.State = QueueState.Waiting; // settled by SettleDependencies once all entries are in
            return;
        }

        entry.State = QueueState.Pending;
        _pending.AddLast(entry.Work.CellKey);
    }

    /// <summary>
    /// Brings every not-yet-leased cell with dependencies to the state its dependencies imply: Blocked (with the reason) when one
    /// failed or is blocked, Waiting while one has not succeeded, else Pending. A dependency absent from the queue had
    /// succeeded before the sweep was loaded. Repeats until nothing changes, so blocking passes down several stages.
    /// </summary>
    private void SettleDependencies()
    {
        bool changed;
        do
        {
            changed = false;
            foreach (var entry in _entries.Values)
            {
                if (entry.Work.Dependencies.Count > 0 && entry.State is QueueState.Waiting or QueueState.Blocked or QueueState.Pending)
                {
                    changed |= Settle(entry);
                }
            }
        }
        while (changed);
    }

    private bool Settle(Entry entry)
    {
        QueueState target = QueueState.Pending;
        string? reason = null;
        foreach (var key in entry.Work.Dependencies)
        {
            if (!_entries.TryGetValue(key, out var dependency) || dependency.State == QueueState.Done)
            {
                continue;
            }

            if (dependency.State is QueueState.Failed or QueueState.Blocked)
            {
                target = QueueState.Blocked;
                var why = (dependency.LastError ?? "no reason recorded").Split('\n')[0];
                reason = dependency.State == QueueState.Failed
                    ? $"blocked: needs {dependency.Work.Label} ({key[..Math.Min(12, key.Length)]}), which failed: {why}"
                    : $"blocked: needs {dependency.Work.Label}, which is {why}";
                break;
            }

            target = QueueState.Waiting;
        }

        if (entry.State == target)
        {
            return false;
        }

        entry.State = target;
        if (target == QueueState.Blocked)
        {
            entry.LastError = reason;
        }
        else if (entry.LastError?.StartsWith("blocked: ", StringComparison.Ordinal) == true)
        {
            entry.LastError = null;
        }

        if (target == QueueState.Pending)
        {
            // A cell whose inputs just became ready goes first: it completes work already started (a point, a stage) instead
            // of waiting behind every cell queued after its dependencies.
            _pending.AddFirst(entry.Work.CellKey);
        }

        return true;
    }

    /// <summary>Re-settles the cells that depend on <paramref name="key"/> after it ended (succeeded or failed for good).</summary>
    private void SettleDependants(string key)
    {
        if (_dependants.ContainsKey(key))
        {
            SettleDependencies();
        }
    }

    /// <summary>
    /// Leases the first pending cell this worker can run (device requirement; with <see cref="WorkerCapabilities.PackGroup"/>,
    /// only a cell of that pack group, for a worker filling a pack), or null.
    /// </summary>
    public CellLease? Lease(WorkerCapabilities worker)
    {
        ExpireLeases();
        var node = _pending.First;
        while (node is not null)
        {
            var next = node.Next;
            if (!_entries.TryGetValue(node.Value, out var entry) || entry.State != QueueState.Pending)
            {
                _pending.Remove(node);
            }
            else if ((entry.Work.RequiredDevice is null || entry.Work.RequiredDevice == worker.DeviceKind)
                     && (worker.PackGroup is null || worker.PackGroup == entry.Work.PackGroup))
            {
                _pending.Remove(node);
                entry.State = QueueState.Leased;
                entry.Attempts++;
                _changedAttempts.Add(entry.Work.CellKey);
                entry.LeaseId = Guid.NewGuid().ToString("N");
                entry.WorkerId = worker.WorkerId;
                entry.ExpiresAt = clock.GetUtcNow() + entry.Work.LeaseTime;
                _leases[entry.LeaseId] = entry.Work.CellKey;
                return new CellLease(entry.LeaseId, entry.Work, entry.Attempts, entry.ExpiresAt);
            }

            node = next;
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

    /// <summary>Ends a lease. A completion for a lease that is no longer current (expired, re-leased, cancelled) is ignored.</summary>
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
            entry.State = QueueState.Done;
            entry.LastError = null;
        }
        else
        {
            Retry(entry, completion.Error ?? "failed without a reason");
        }

        SettleDependants(entry.Work.CellKey);
        return true;
    }

    /// <summary>Removes a sweep: its pending cells leave the queue and its leased cells lose their lease.</summary>
    public void Cancel(string sweepId)
    {
        _sweeps.Remove(sweepId);
        foreach (var entry in _entries.Values.Where(e => e.Sweeps.Remove(sweepId) && e.Sweeps.Count == 0).ToList())
        {
            if (entry.LeaseId is not null)
            {
                _leases.Remove(entry.LeaseId);
            }

            _entries.Remove(entry.Work.CellKey);
        }

        // Drop the cancelled cells' places in the lease order: a cell submitted again later queues at the end, not where it was.
        for (var node = _pending.First; node is not null;)
        {
            var next = node.Next;
            if (!_entries.ContainsKey(node.Value))
            {
                _pending.Remove(node);
            }

            node = next;
        }
    }

    public SweepProgress Progress(string sweepId)
    {
        ExpireLeases();
        _sweeps.TryGetValue(sweepId, out var totals);
        int pending = 0, leased = 0, done = 0, failed = 0, waiting = 0, blocked = 0;
        foreach (var entry in _entries.Values.Where(e => e.Sweeps.Contains(sweepId)))
        {
            switch (entry.State)
            {
                case QueueState.Pending: pending++; break;
                case QueueState.Leased: leased++; break;
                case QueueState.Done: done++; break;
                case QueueState.Failed: failed++; break;
                case QueueState.Waiting: waiting++; break;
                case QueueState.Blocked: blocked++; break;
            }
        }

        // A cell done in this queue and later counted again as "already done" by an extend or a resubmission must not
        // count twice: done is at most what is neither pending, leased, failed, waiting nor blocked.
        var doneAll = Math.Min(done + totals.Reused, Math.Max(0, totals.Total - pending - leased - failed - waiting - blocked));
        return new SweepProgress(sweepId, totals.Total, pending, leased, doneAll, failed, totals.Reused, waiting, blocked);
    }

    public IReadOnlyList<CellState> Cells(string sweepId)
    {
        ExpireLeases();
        return _entries.Values
            .Where(e => e.Sweeps.Contains(sweepId))
            .Select(e => new CellState(e.Work.CellKey, e.Work.Label, e.State.ToString().ToLowerInvariant(), e.Attempts,
                e.State == QueueState.Leased ? e.WorkerId : null, e.LastError))
            .ToList();
    }

    /// <summary>Attempt counts changed since the last call (to persist), and forgets them.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> TakeChangedAttempts()
    {
        var changed = _changedAttempts
            .Select(k => new KeyValuePair<string, int>(k, _entries.TryGetValue(k, out var e) ? e.Attempts : 0))
            .ToList();
        _changedAttempts.Clear();
        return changed;
    }

    public void MarkAttemptsChanged(string cellKey) => _changedAttempts.Add(cellKey);

    private bool TryGetLeased(string leaseId, out Entry entry)
    {
        entry = null!;
        return _leases.TryGetValue(leaseId, out var key) && _entries.TryGetValue(key, out entry!) &&
               entry.State == QueueState.Leased && entry.LeaseId == leaseId;
    }

    /// <summary>Returns expired leases' cells to the queue; looks only at leased cells (at most the cluster's slots).</summary>
    private void ExpireLeases()
    {
        var now = clock.GetUtcNow();
        List<Entry>? expired = null;
        foreach (var key in _leases.Values)
        {
            if (_entries.TryGetValue(key, out var e) && e.State == QueueState.Leased && e.ExpiresAt <= now)
            {
                (expired ??= []).Add(e);
            }
        }

        foreach (var entry in expired ?? [])
        {
            _leases.Remove(entry.LeaseId!);
            entry.LeaseId = null;
            Retry(entry, $"lease expired (worker {entry.WorkerId} stopped renewing it)");
            SettleDependants(entry.Work.CellKey);
        }
    }

    private void Retry(Entry entry, string reason)
    {
        entry.LastError = reason;
        if (entry.Attempts >= entry.Work.MaxAttempts)
        {
            entry.State = QueueState.Failed;
        }
        else
        {
            entry.State = QueueState.Pending;
            _pending.AddLast(entry.Work.CellKey);
        }
    }
}
