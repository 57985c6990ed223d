using System.Globalization;
using System.Text;
using Orchestrator.Abstractions;
using Orchestrator.Grains;
using Orchestrator.Results;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// Model-based randomized test of <see cref="TrialQueue"/> alone: random interleavings of lease (claim, durable count, grant
/// or abandon, with claims left open across other steps as in the reentrant grain), renew, complete (success or failure,
/// current or late), expire (the fake clock jumps), release, cancel, resume, rerun-failed, resubmit and restart (the queue
/// rebuilt from a simulated database), checked after every step against a simple reference model and the simulated
/// database. Seeded and reproducible: a failure names its seed and the steps that led to it; set
/// <c>ORCHESTRATOR_QUEUE_SEED</c> to run one seed.
/// </summary>
public sealed class TrialQueueModelTests(ITestOutputHelper output)
{
    private const int Seeds = 100;
    private const int StepsPerSeed = 200;
    private const int LeaseSeconds = 10;

    [Fact]
    public void Random_interleavings_keep_the_queue_equal_to_the_model_and_the_database()
    {
        var only = Environment.GetEnvironmentVariable("ORCHESTRATOR_QUEUE_SEED");
        var seeds = only is null ? Enumerable.Range(1, Seeds) : [int.Parse(only, CultureInfo.InvariantCulture)];
        var steps = 0;
        var events = new Dictionary<string, int>();
        foreach (var seed in seeds)
        {
            var run = new Run(seed);
            try
            {
                for (var i = 0; i < StepsPerSeed; i++)
                {
                    run.Step();
                    run.Check();
                    steps++;
                }

                foreach (var (name, count) in run.Events)
                {
                    events[name] = events.GetValueOrDefault(name) + count;
                }
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"seed {seed} failed (rerun with ORCHESTRATOR_QUEUE_SEED={seed}): {e.Message}\nlast steps:\n{run.History}", e);
            }
        }

        output.WriteLine($"{steps} steps checked: " + string.Join(", ", events.OrderBy(e => e.Key).Select(e => $"{e.Key} {e.Value}")));
        Assert.True(steps >= (only is null ? Seeds * StepsPerSeed : StepsPerSeed));
        if (only is null)
        {
            // Every kind of step happened often enough to matter, the rare ones included.
            Assert.All(new[] { "granted", "late-success", "late-failure", "released", "expired", "restart", "rerun-failed", "abandon" },
                name => Assert.True(events.GetValueOrDefault(name) >= 20, $"only {events.GetValueOrDefault(name)} '{name}' steps"));
            Assert.True(events.GetValueOrDefault("refused") >= 2, "a grant over the limit (after a lost count) never happened");
        }
    }

    private sealed class FakeClock : TimeProvider
    {
        private long _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;

        public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(_ticks);

        public override long GetTimestamp() => _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }

    /// <summary>The database as the store keeps it: attempt counters and limits, one result per cell, sweeps.</summary>
    private sealed class Db
    {
        public Dictionary<string, (int Attempts, int Limit)> Counters { get; } = [];
        public Dictionary<string, (string Status, int Attempt)> Results { get; } = [];
        public Dictionary<string, bool> Active { get; } = [];

        public int Begin(string key, int limit)
        {
            var (attempts, stored) = Counters.GetValueOrDefault(key);
            var next = Math.Max(attempts + 1, 1 + (Results.TryGetValue(key, out var r) ? r.Attempt : 0));
            Counters[key] = (next, Math.Max(stored, limit));
            return next;
        }

        public AttemptBudget Grant(string key, int attempts, bool includeExhausted)
        {
            var (count, limit) = Counters.GetValueOrDefault(key);
            if (limit < count + attempts && (includeExhausted || limit == 0 || count < limit))
            {
                limit = count + attempts;
            }

            Counters[key] = (count, limit);
            return new AttemptBudget(count, limit);
        }

        public void RaiseLimit(string key, int limit)
        {
            var (count, stored) = Counters.GetValueOrDefault(key);
            Counters[key] = (count, Math.Max(stored, limit));
        }

        /// <summary>The upsert rules; returns what is stored afterwards.</summary>
        public (string Status, int Attempt) Upsert(string key, string status, int attempt)
        {
            if (!Results.TryGetValue(key, out var stored) ||
                (stored.Status == CellStatus.Failed && (status == CellStatus.Succeeded || stored.Attempt <= attempt)))
            {
                Results[key] = (status, attempt);
            }

            return Results[key];
        }

        public bool Succeeded(string key) => Results.TryGetValue(key, out var r) && r.Status == CellStatus.Succeeded;
    }

    private enum S { Pending, Claimed, Leased, Done, Failed }

    /// <summary>The reference model of one queued cell.</summary>
    private sealed class Cell
    {
        public S State;
        public int Attempts;
        public int Limit;
        public string? LeaseId;
        public long Deadline;
        public HashSet<string> Sweeps { get; } = [];
    }

    private sealed record Held(string LeaseId, string CellKey, int Attempt);

    private sealed record OpenClaim(TrialQueue Queue, TrialQueue.LeaseClaim Claim);

    private sealed class Run
    {
        private static readonly Dictionary<string, (string[] Cells, int MaxAttempts)> SweepCells = new()
        {
            ["s1"] = (["c0", "c1", "c2", "c3", "c4", "c5"], 2),
            ["s2"] = (["c3", "c4", "c5", "c6", "c7"], 3),
        };

        private static readonly WorkerCapabilities Worker = new("w", "cpu", 0, 0, 1);

        private readonly Random _random;
        private readonly FakeClock _clock = new();
        private readonly Db _db = new();
        private readonly Dictionary<string, Cell> _model = [];
        private readonly Dictionary<string, int> _lastGranted = [];
        private readonly List<Held> _held = [];
        private readonly List<OpenClaim> _claims = [];
        private readonly Queue<string> _history = new();
        private TrialQueue _queue;

        public Run(int seed)
        {
            _random = new Random(seed);
            _queue = new TrialQueue(_clock);
            foreach (var sweep in SweepCells.Keys)
            {
                Submit(sweep);
            }
        }

        public string History => string.Join("\n", _history);

        public Dictionary<string, int> Events { get; } = [];

        private void Count(string name) => Events[name] = Events.GetValueOrDefault(name) + 1;

        private void Log(string line)
        {
            Count(line.Split(' ')[0]);
            _history.Enqueue(line);
            if (_history.Count > 40)
            {
                _history.Dequeue();
            }
        }

        private static CellWork Work(string sweep, string key) =>
            new(sweep, key, "{}", key, SweepCells[sweep].MaxAttempts, LeaseSeconds, ["bleu"]);

        private long Now => _clock.GetTimestamp();

        public void Step()
        {
            ExpireModel();
            switch (_random.Next(100))
            {
                case < 25: Claim(); break;
                case < 40: ResolveClaim(); break;
                case < 48: Renew(); break;
                case < 68: Complete(); break;
                case < 78: Advance(); break;
                case < 83: Release(); break;
                case < 86: Cancel(); break;
                case < 90: Reload(resetFailed: false); break;
                case < 94: Reload(resetFailed: true); break;
                case < 97: Submit(Pick(SweepCells.Keys.ToList())); break;
                default: Restart(); break;
            }

            ExpireModel();
        }

        private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

        // ------------------------------------------------------------------ steps

        private void Claim()
        {
            var claim = _queue.Claim(Worker);
            Log($"claim -> {claim?.CellKey ?? "none"}");
            if (claim is null)
            {
                Assert.DoesNotContain(_model.Values, c => c.State == S.Pending);
                return;
            }

            var cell = _model[claim.CellKey];
            Assert.Equal(S.Pending, cell.State);
            Assert.Equal(cell.Attempts + 1, claim.NextAttempt);
            (cell.State, cell.LeaseId) = (S.Claimed, claim.LeaseId);
            _claims.Add(new OpenClaim(_queue, claim));
        }

        /// <summary>The durable count of an open claim: written (then granted), failed (abandoned) or written with its reply lost.</summary>
        private void ResolveClaim()
        {
            if (_claims.Count == 0)
            {
                return;
            }

            var open = Pick(_claims);
            _claims.Remove(open);
            var key = open.Claim.CellKey;
            var outcome = _random.Next(10);
            if (open.Queue != _queue)
            {
                // A call in flight when the coordinator died: its count may still land; no lease comes of it.
                if (outcome < 7)
                {
                    _db.Begin(key, open.Claim.Limit);
                }

                Log($"claim of {key} from before the restart ends{(outcome < 7 ? " (count written)" : "")}");
                return;
            }

            var current = _model.TryGetValue(key, out var cell) && cell.LeaseId == open.Claim.LeaseId && cell.State == S.Claimed;
            if (outcome < 7)
            {
                var attempt = _db.Begin(key, open.Claim.Limit);
                var lease = open.Queue.Grant(open.Claim.LeaseId, attempt);
                Log($"grant {key} attempt {attempt} -> {(lease is null ? "refused" : "granted")}");
                Assert.True(attempt > _lastGranted.GetValueOrDefault(key), $"attempt {attempt} of {key} was issued before");
                if (!current)
                {
                    Assert.Null(lease);
                    return;
                }

                var model = _model[key];
                model.Attempts = Math.Max(model.Attempts, attempt);
                if (model.Attempts > model.Limit)
                {
                    Count("refused");
                    Assert.Null(lease);
                    (model.State, model.LeaseId) = (S.Failed, null);
                    return;
                }

                Assert.NotNull(lease);
                Count("granted");
                Assert.Equal(attempt, lease.Attempt);
                Assert.True(attempt <= _db.Counters[key].Limit, $"attempt {attempt} of {key} is over its budget {_db.Counters[key].Limit}");
                _lastGranted[key] = attempt;
                (model.State, model.Deadline) = (S.Leased, Now + TimeSpan.FromSeconds(LeaseSeconds).Ticks);
                _held.Add(new Held(lease.LeaseId, key, attempt));
            }
            else
            {
                if (outcome == 9)
                {
                    _db.Begin(key, open.Claim.Limit); // committed, but the reply was lost: the count is spent, never reused
                }

                open.Queue.Abandon(open.Claim.LeaseId);
                Log($"abandon {key}{(outcome == 9 ? " (count written)" : "")}");
                if (current)
                {
                    (_model[key].State, _model[key].LeaseId) = (S.Pending, null);
                }
            }
        }

        private void Renew()
        {
            if (_held.Count == 0)
            {
                return;
            }

            var held = Pick(_held);
            var renewed = _queue.Renew(held.LeaseId);
            Log($"renew {held.CellKey} attempt {held.Attempt} -> {renewed}");
            var current = IsCurrent(held);
            Assert.Equal(current, renewed);
            if (current)
            {
                _model[held.CellKey].Deadline = Now + TimeSpan.FromSeconds(LeaseSeconds).Ticks;
            }
        }

        private void Complete()
        {
            if (_held.Count == 0)
            {
                return;
            }

            var held = Pick(_held);
            _held.Remove(held);
            var computed = _random.Next(3) == 0 ? CellStatus.Failed : CellStatus.Succeeded;
            var stored = _db.Upsert(held.CellKey, computed, held.Attempt);
            var succeeded = stored.Status == CellStatus.Succeeded;
            var current = IsCurrent(held);
            var accepted = _queue.Complete(new CellCompletion(held.LeaseId, succeeded, succeeded ? null : "boom", held.CellKey, stored.Attempt));
            Log($"complete {held.CellKey} attempt {held.Attempt} {computed} (stored {stored.Status} {stored.Attempt}, current {current}) -> {accepted}");
            if (!_model.TryGetValue(held.CellKey, out var cell))
            {
                Assert.False(accepted);
                return;
            }

            if (current)
            {
                Assert.True(accepted);
                cell.LeaseId = null;
                cell.State = succeeded ? S.Done : cell.Attempts >= cell.Limit ? S.Failed : S.Pending;
            }
            else if (succeeded && cell.State != S.Done)
            {
                Count("late-success");
                Assert.True(accepted);                       // a late success the database holds is accepted
                (cell.State, cell.LeaseId) = (S.Done, null); // a newer holder (or an open claim) loses its lease
            }
            else
            {
                Count(succeeded ? "late-success-on-done" : "late-failure");
                Assert.False(accepted);
            }
        }

        private void Advance()
        {
            var seconds = _random.Next(0, 3 * LeaseSeconds / 2);
            _clock.Advance(TimeSpan.FromSeconds(seconds));
            Log($"advance {seconds}s");
        }

        private void Release()
        {
            if (_held.Count == 0)
            {
                return;
            }

            var held = Pick(_held);
            _held.Remove(held);
            var current = IsCurrent(held);
            var released = _queue.ReleaseLease(held.LeaseId);
            Log($"release {held.CellKey} attempt {held.Attempt} (current {current}) -> {released}");
            Assert.Equal(current, released is not null);
            if (released is not null)
            {
                Count("released");
                var cell = _model[held.CellKey];
                cell.Limit++;
                Assert.Equal(cell.Limit, released.Limit);
                (cell.State, cell.LeaseId) = (S.Pending, null);
                _db.RaiseLimit(held.CellKey, released.Limit);
            }
        }

        private void Cancel()
        {
            var sweep = Pick(SweepCells.Keys.ToList());
            Log($"cancel {sweep}");
            _db.Active[sweep] = false;
            _queue.Cancel(sweep);
            foreach (var (key, cell) in _model.ToList())
            {
                if (cell.Sweeps.Remove(sweep) && cell.Sweeps.Count == 0)
                {
                    _model.Remove(key);
                }
            }
        }

        /// <summary>resume (a fresh budget for cells that have not used theirs) or rerun-failed (for all), as the grain does it.</summary>
        private void Reload(bool resetFailed)
        {
            var sweep = Pick(SweepCells.Keys.ToList());
            Log($"{(resetFailed ? "rerun-failed" : "resume")} {sweep}");
            _db.Active[sweep] = true;
            var unfinished = SweepCells[sweep].Cells.Where(k => !_db.Succeeded(k)).ToList();
            var budgets = unfinished.ToDictionary(k => k, k => _db.Grant(k, SweepCells[sweep].MaxAttempts, resetFailed));
            _queue.Load(sweep, SweepCells[sweep].Cells.Length, unfinished.Select(k => (Work(sweep, k), budgets[k], (string?)null)).ToList());
            AddToModel(sweep, budgets);
        }

        /// <summary>A submission (first or repeated) of the sweep's cells that have no success, as the sweep grain does it.</summary>
        private void Submit(string sweep)
        {
            Log($"submit {sweep}");
            _db.Active[sweep] = true;
            var todo = SweepCells[sweep].Cells.Where(k => !_db.Succeeded(k)).ToList();
            var budgets = todo.ToDictionary(k => k, k => _db.Grant(k, SweepCells[sweep].MaxAttempts, includeExhausted: true));
            _queue.Enqueue(sweep, todo.Select(k => Work(sweep, k)).ToList(), SweepCells[sweep].Cells.Length - todo.Count, budgets);
            AddToModel(sweep, budgets);
        }

        private void AddToModel(string sweep, Dictionary<string, AttemptBudget> budgets)
        {
            foreach (var (key, budget) in budgets)
            {
                var limit = budget.Limit > 0 ? budget.Limit : budget.Attempts + SweepCells[sweep].MaxAttempts;
                if (_model.TryGetValue(key, out var cell))
                {
                    cell.Sweeps.Add(sweep);
                    cell.Attempts = Math.Max(cell.Attempts, budget.Attempts);
                    cell.Limit = Math.Max(cell.Limit, limit);
                    if (cell.State == S.Failed && cell.Attempts < cell.Limit)
                    {
                        cell.State = S.Pending;
                    }
                }
                else
                {
                    cell = new Cell { Attempts = budget.Attempts, Limit = limit, State = budget.Attempts >= limit ? S.Failed : S.Pending };
                    cell.Sweeps.Add(sweep);
                    _model[key] = cell;
                }
            }
        }

        /// <summary>The coordinator dies: a new queue is rebuilt from the database's active sweeps; every lease and claim is stale.</summary>
        private void Restart()
        {
            Log("restart");
            _queue = new TrialQueue(_clock);
            _model.Clear();
            foreach (var (sweep, (cells, _)) in SweepCells)
            {
                if (!_db.Active.GetValueOrDefault(sweep))
                {
                    continue;
                }

                var unfinished = cells.Where(k => !_db.Succeeded(k)).ToList();
                var budgets = unfinished.ToDictionary(k => k, k => _db.Counters.TryGetValue(k, out var c)
                    ? new AttemptBudget(Math.Max(c.Attempts, _db.Results.TryGetValue(k, out var r) ? r.Attempt : 0), c.Limit)
                    : new AttemptBudget(0, 0));
                _queue.Load(sweep, cells.Length, unfinished.Select(k => (Work(sweep, k), budgets[k], (string?)null)).ToList());
                AddToModel(sweep, budgets);
            }
        }

        // ------------------------------------------------------------------ model rules

        private bool IsCurrent(Held held) =>
            _model.TryGetValue(held.CellKey, out var cell) && cell.State == S.Leased && cell.LeaseId == held.LeaseId;

        private void ExpireModel()
        {
            foreach (var cell in _model.Values.Where(c => c.State == S.Leased && c.Deadline <= Now))
            {
                Count("expired");
                cell.LeaseId = null;
                cell.State = cell.Attempts >= cell.Limit ? S.Failed : S.Pending;
            }
        }

        // ------------------------------------------------------------------ invariants

        public void Check()
        {
            var cells = _model.Keys.SelectMany(k => _model[k].Sweeps).Distinct()
                .SelectMany(s => _queue.Cells(s))
                .GroupBy(c => c.CellKey)
                .ToDictionary(g => g.Key, g => g.First());
            Assert.Equal(_model.Keys.Order(), cells.Keys.Order());
            foreach (var (key, cell) in _model)
            {
                var expected = cell.State switch
                {
                    S.Claimed or S.Leased => "leased",
                    _ => cell.State.ToString().ToLowerInvariant(),
                };
                Assert.True(expected == cells[key].State, $"cell {key}: queue says {cells[key].State}, the model {expected}");
                Assert.True(cell.Attempts == cells[key].Attempts, $"cell {key}: queue has {cells[key].Attempts} attempts, the model {cell.Attempts}");

                // Success never lost, never invented: done in the queue exactly when the database holds a success.
                Assert.True(_db.Succeeded(key) == (cell.State == S.Done), $"cell {key}: database success {_db.Succeeded(key)}, queue {expected}");

                // Budgets: a leased cell is within its limit, and its count is what the database counted.
                var entry = _queue.Entries[key];
                Assert.Equal(cell.Limit, entry.Limit);
                if (cell.State == S.Leased)
                {
                    Assert.True(entry.Attempts <= entry.Limit, $"cell {key} is leased as attempt {entry.Attempts} over its limit {entry.Limit}");
                    Assert.True(entry.Attempts <= _db.Counters[key].Attempts);
                }
            }

            // Never two live leases for a cell.
            foreach (var group in _held.GroupBy(h => h.CellKey))
            {
                Assert.True(group.Count(IsCurrent) <= 1, $"cell {group.Key} has two live leases");
                Assert.True(group.Count(h => _queue.Entries.TryGetValue(h.CellKey, out var e) && e.LeaseId == h.LeaseId && e.Granted) <= 1);
            }

            // Progress agrees with the cells.
            foreach (var sweep in SweepCells.Keys.Where(s => _model.Values.Any(c => c.Sweeps.Contains(s))))
            {
                var p = _queue.Progress(sweep);
                var mine = _model.Values.Where(c => c.Sweeps.Contains(sweep)).ToList();
                Assert.Equal(mine.Count(c => c.State is S.Claimed or S.Leased), p.Leased);
                Assert.Equal(mine.Count(c => c.State == S.Pending), p.Pending);
                Assert.Equal(mine.Count(c => c.State == S.Failed), p.Failed);
            }
        }
    }
}
