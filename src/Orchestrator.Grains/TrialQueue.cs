using Orchestrator.Abstractions;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// The lease state machine of the pull queue, free of Orleans so it can be tested directly. A cell is
/// Pending → Leased (attempt n) → Done, or back to Pending when its lease expires or its attempt fails, until its attempt
/// limit makes it Failed (with the last reason). A cell of a later stage starts Waiting and becomes Pending when every cell
/// it needs is Done, or Blocked (with the reason) when one of them failed; a blocked cell waits until <c>rerun-failed</c>
/// gives its dependency new attempts.
/// <para>
/// Attempt numbers only grow over a cell's whole life; a budget (<see cref="Entry.Limit"/>) bounds them, and reruns raise the
/// limit instead of resetting the count. Leasing has two steps so that the count can be made durable in between:
/// <see cref="Claim"/> reserves a cell (nobody else can lease it; it cannot expire), <see cref="Grant"/> hands it out with the
/// attempt number the database returned, <see cref="Abandon"/> gives it back when that write failed. <see cref="Lease"/> does
/// both at once with the in-memory count. Deadlines use the clock's monotonic timestamp, never wall time.
/// </para>
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

        /// <summary>Attempts started over the cell's life (the last lease's attempt number).</summary>
        public int Attempts { get; set; }

        /// <summary>The highest attempt number the cell may be leased with.</summary>
        public int Limit { get; set; }

        public string? LeaseId { get; set; }

        /// <summary>False while the lease is only claimed (its attempt not yet durable, not yet handed out).</summary>
        public bool Granted { get; set; }

        public string? WorkerId { get; set; }

        /// <summary>The lease's deadline as a <see cref="TimeProvider.GetTimestamp"/> value.</summary>
        public long Deadline { get; set; }

        public string? LastError { get; set; }

        /// <summary>How many attempts in a row ended with the lease expiring (the worker died or hung); a completion resets it.</summary>
        public int Expiries { get; set; }
    }

    /// <summary>A cell reserved by <see cref="Claim"/>: make <see cref="NextAttempt"/> durable, then <see cref="Grant"/> or <see cref="Abandon"/>.</summary>
    public sealed record LeaseClaim(string LeaseId, string CellKey, int NextAttempt, int Limit);

    /// <summary>A lease given back without charging its attempt: the cell's new limit, to persist.</summary>
    public sealed record Release(string CellKey, int Limit);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _pending = new();
    private readonly Dictionary<string, (int Total, int Reused)> _sweeps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _dependants = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, Entry> Entries => _entries;

    public bool HasSweep(string sweepId) => _sweeps.ContainsKey(sweepId);

    /// <summary>
    /// Adds cells (ignoring ones already queued, running or done; a failed one is queued again when its budget allows);
    /// returns how many were newly queued. <paramref name="budgets"/>: each cell's attempt count and limit from the database;
    /// without one, a cell gets its spec's max_attempts on top of the attempts it has had.
    /// </summary>
    public int Enqueue(string sweepId, IReadOnlyList<CellWork> cells, int alreadyDone, IReadOnlyDictionary<string, AttemptBudget>? budgets = null)
    {
        var queued = cells.Count(work =>
        {
            var attempts = _entries.TryGetValue(work.CellKey, out var existing) ? existing.Attempts : 0;
            var budget = budgets?.GetValueOrDefault(work.CellKey) ?? new AttemptBudget(attempts, attempts + work.MaxAttempts);
            return Add(sweepId, work, budget, lastError: null);
        });
        _sweeps[sweepId] = (cells.Count + alreadyDone, alreadyDone);
        SettleDependencies();
        return queued;
    }

    /// <summary>
    /// Rebuilds a sweep from the database: <paramref name="unfinished"/> are its cells without a successful result
    /// (with their recorded attempts, limit and last failure); the others count as done. A cell whose attempts have reached
    /// its limit is Failed; one already in the queue takes the higher count and limit (a Failed one whose limit was raised
    /// is queued again). Returns how many of the sweep's cells are pending or waiting afterwards.
    /// </summary>
    public int Load(string sweepId, int total, IReadOnlyList<(CellWork Work, AttemptBudget Budget, string? LastError)> unfinished)
    {
        foreach (var (work, budget, lastError) in unfinished)
        {
            Add(sweepId, work, budget, lastError);
        }

        _sweeps[sweepId] = (total, total - unfinished.Count);
        SettleDependencies();
        return _entries.Values.Count(e => e.State is QueueState.Pending or QueueState.Waiting && e.Sweeps.Contains(sweepId));
    }

    private static int LimitOf(CellWork work, AttemptBudget budget) => budget.Limit > 0 ? budget.Limit : budget.Attempts + work.MaxAttempts;

    private bool Add(string sweepId, CellWork work, AttemptBudget budget, string? lastError)
    {
        if (work.SweepId != sweepId)
        {
            throw new ArgumentException($"cell {work.CellKey} belongs to sweep {work.SweepId}, not {sweepId}");
        }

        var limit = LimitOf(work, budget);
        if (_entries.TryGetValue(work.CellKey, out var existing))
        {
            existing.Sweeps.Add(sweepId);
            existing.Attempts = Math.Max(existing.Attempts, budget.Attempts);
            existing.Limit = Math.Max(existing.Limit, limit);
            if (existing.State == QueueState.Failed && existing.Attempts < existing.Limit)
            {
                MakeRunnable(existing);
                return true;
            }

            return false;
        }

        var entry = new Entry(work) { Attempts = budget.Attempts, Limit = limit, LastError = lastError };
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

        if (entry.Attempts >= entry.Limit)
        {
            entry.State = QueueState.Failed;
            // No failure was ever reported for it: every attempt ended with its lease running out.
            entry.LastError ??= PoisonReason(entry.Attempts);
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
    /// Leases the first pending cell this worker can run with the next in-memory attempt number (<see cref="Claim"/> and
    /// <see cref="Grant"/> at once), or null.
    /// </summary>
    public CellLease? Lease(WorkerCapabilities worker) =>
        Claim(worker) is { } claim ? Grant(claim.LeaseId, claim.NextAttempt) : null;

    /// <summary>
    /// Reserves the first pending cell this worker can run (device requirement; with <see cref="WorkerCapabilities.PackGroup"/>,
    /// only a cell of that pack group, for a worker filling a pack), or null. The cell counts as leased; its lease neither
    /// expires nor can be renewed or completed until <see cref="Grant"/>.
    /// </summary>
    public LeaseClaim? Claim(WorkerCapabilities worker)
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
                entry.Granted = false;
                entry.LeaseId = Guid.NewGuid().ToString("N");
                entry.WorkerId = worker.WorkerId;
                _leases[entry.LeaseId] = entry.Work.CellKey;
                return new LeaseClaim(entry.LeaseId, entry.Work.CellKey, entry.Attempts + 1, entry.Limit);
            }

            node = next;
        }

        return null;
    }

    /// <summary>
    /// Hands out a claimed lease as attempt <paramref name="attempt"/> (the durable count), or null when the claim is no
    /// longer current (its sweep was cancelled meanwhile) or the attempt is over the cell's limit (then the cell fails).
    /// </summary>
    public CellLease? Grant(string leaseId, int attempt)
    {
        if (!_leases.TryGetValue(leaseId, out var key) || !_entries.TryGetValue(key, out var entry) || entry.LeaseId != leaseId || entry.Granted)
        {
            return null;
        }

        entry.Attempts = Math.Max(entry.Attempts, attempt);
        if (entry.Attempts > entry.Limit)
        {
            EndLease(entry);
            entry.State = QueueState.Failed;
            entry.LastError = $"all {entry.Limit} attempts used";
            SettleDependants(key);
            return null;
        }

        entry.Granted = true;
        entry.Deadline = clock.GetTimestamp() + Ticks(entry.Work.LeaseTime);
        return new CellLease(leaseId, entry.Work, entry.Attempts, clock.GetUtcNow() + entry.Work.LeaseTime);
    }

    /// <summary>Returns a claimed, not granted cell to the front of the queue without counting an attempt (its durable write failed).</summary>
    public void Abandon(string leaseId)
    {
        if (_leases.TryGetValue(leaseId, out var key) && _entries.TryGetValue(key, out var entry) && entry.LeaseId == leaseId && !entry.Granted)
        {
            EndLease(entry);
            entry.State = QueueState.Pending;
            _pending.AddFirst(key);
        }
    }

    public bool Renew(string leaseId)
    {
        ExpireLeases();
        if (!TryGetLeased(leaseId, out var entry))
        {
            return false;
        }

        entry.Deadline = clock.GetTimestamp() + Ticks(entry.Work.LeaseTime);
        return true;
    }

    /// <summary>
    /// Ends a lease with what the database holds for the cell. For a lease that is no longer current (expired, re-leased):
    /// a success is still accepted (the database has it) and the cell becomes Done, the newer holder being told to stop at its
    /// next renewal; a failure is ignored. Returns whether the queue changed.
    /// </summary>
    public bool Complete(CellCompletion completion)
    {
        ExpireLeases();
        if (!TryGetLeased(completion.LeaseId, out var entry))
        {
            return completion.Succeeded && AcceptLateSuccess(completion);
        }

        EndLease(entry);
        entry.Expiries = 0;
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

    private bool AcceptLateSuccess(CellCompletion completion)
    {
        if (completion.CellKey is not { } key || !_entries.TryGetValue(key, out var entry) || entry.State == QueueState.Done)
        {
            return false;
        }

        if (entry.LeaseId is not null)
        {
            EndLease(entry); // its holder learns at its next renewal that the lease is gone
        }

        entry.State = QueueState.Done;
        entry.LastError = null;
        SettleDependants(key);
        return true;
    }

    /// <summary>
    /// Gives a current lease back without charging its attempt (a worker stopping gracefully): the cell goes to the front of
    /// the queue and its limit rises by one. Null when the lease is not current. Persist the returned limit.
    /// </summary>
    public Release? ReleaseLease(string leaseId)
    {
        ExpireLeases();
        if (!TryGetLeased(leaseId, out var entry))
        {
            return null;
        }

        EndLease(entry);
        entry.Limit++;
        entry.State = QueueState.Pending;
        _pending.AddFirst(entry.Work.CellKey);
        return new Release(entry.Work.CellKey, entry.Limit);
    }

    private void EndLease(Entry entry)
    {
        if (entry.LeaseId is not null)
        {
            _leases.Remove(entry.LeaseId);
        }

        entry.LeaseId = null;
        entry.Granted = false;
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * clock.TimestampFrequency);

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

    /// <summary>The work of the cell held under <paramref name="leaseId"/>; null when no such lease is held.</summary>
    public CellWork? LeasedWork(string leaseId) => TryGetLeased(leaseId, out var entry) ? entry.Work : null;

    private bool TryGetLeased(string leaseId, out Entry entry)
    {
        entry = null!;
        return _leases.TryGetValue(leaseId, out var key) && _entries.TryGetValue(key, out entry!) &&
               entry.State == QueueState.Leased && entry.LeaseId == leaseId && entry.Granted;
    }

    /// <summary>Returns expired leases' cells to the queue; looks only at leased cells (at most the cluster's slots).</summary>
    private void ExpireLeases()
    {
        var now = clock.GetTimestamp();
        List<Entry>? expired = null;
        foreach (var key in _leases.Values)
        {
            if (_entries.TryGetValue(key, out var e) && e.State == QueueState.Leased && e.Granted && e.Deadline <= now)
            {
                (expired ??= []).Add(e);
            }
        }

        foreach (var entry in expired ?? [])
        {
            EndLease(entry);
            entry.Expiries++;
            Retry(entry, ExpiryReason(entry));
            SettleDependants(entry.Work.CellKey);
        }
    }

    /// <summary>
    /// Why a lease expired. A cell whose last attempt expires after every attempt before it also did likely kills or hangs
    /// whatever worker trains it: the reason says so, so that it is not taken for a flaky worker.
    /// </summary>
    private static string ExpiryReason(Entry entry) =>
        entry.Attempts >= entry.Limit && entry.Expiries > 1
            ? PoisonReason(entry.Expiries == entry.Attempts ? entry.Attempts : entry.Expiries, entry.Expiries != entry.Attempts) +
              $" (the last on worker {entry.WorkerId})"
            : $"lease expired (worker {entry.WorkerId} stopped renewing it)";

    private static string PoisonReason(int attempts, bool last = false) =>
        $"the worker stopped renewing on each of its {(last ? "last " : "")}{attempts} attempts (process died or hung); possibly a poison cell";

    private void Retry(Entry entry, string reason)
    {
        entry.LastError = reason;
        if (entry.Attempts >= entry.Limit)
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
