using Orchestrator.Abstractions;
using Orchestrator.Grains;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

public sealed class TrialQueueTests
{
    /// <summary>Time moves when <see cref="Now"/> is advanced; <see cref="JumpWallClock"/> moves the wall clock alone (NTP, a VM resumed).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        private long _elapsed;

        public DateTimeOffset Now
        {
            get => _now;
            set
            {
                _elapsed += (value - _now).Ticks;
                _now = value;
            }
        }

        public void JumpWallClock(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;

        public override long GetTimestamp() => _elapsed;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }

    private static readonly WorkerCapabilities Worker = new("w1", "cpu", 0, 0, 1);

    private static CellWork Work(string key, int maxAttempts = 2, string sweep = "s", string? device = null) =>
        new(sweep, key, "{}", key, maxAttempts, 60, ["bleu"], device);

    [Fact]
    public void Cells_are_leased_in_order_once_and_completed()
    {
        var queue = new TrialQueue(new ManualClock());
        Assert.Equal(2, queue.Enqueue("s", [Work("a"), Work("b")], 0));
        var first = queue.Lease(Worker)!;
        var second = queue.Lease(Worker)!;
        Assert.Equal(["a", "b"], new[] { first.Work.CellKey, second.Work.CellKey });
        Assert.Equal(1, first.Attempt);
        Assert.Null(queue.Lease(Worker));
        Assert.True(queue.Complete(new CellCompletion(first.LeaseId, true, null)));
        var p = queue.Progress("s");
        Assert.Equal((2, 0, 1, 1, 0), (p.Total, p.Pending, p.Leased, p.Done, p.Failed));
        Assert.False(p.IsComplete);
        Assert.True(queue.Complete(new CellCompletion(second.LeaseId, true, null)));
        Assert.True(queue.Progress("s").IsComplete);
    }

    [Fact]
    public void A_worker_filling_a_pack_leases_only_cells_of_its_pack_group()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a") with { PackGroup = "g1" }, Work("b") with { PackGroup = "g2" }, Work("c") with { PackGroup = "g1" }, Work("d")], 0);
        var filling = Worker with { PackGroup = "g1" };
        Assert.Equal("a", queue.Lease(filling)!.Work.CellKey);
        Assert.Equal("c", queue.Lease(filling)!.Work.CellKey);
        Assert.Null(queue.Lease(filling));
        Assert.Equal("b", queue.Lease(Worker)!.Work.CellKey);   // any group without a filter
        Assert.Equal("d", queue.Lease(Worker)!.Work.CellKey);
    }

    [Fact]
    public void An_expired_lease_returns_the_cell_with_the_next_attempt_and_the_old_holder_cannot_complete()
    {
        var clock = new ManualClock();
        var queue = new TrialQueue(clock);
        queue.Enqueue("s", [Work("a", maxAttempts: 3)], 0);
        var lease1 = queue.Lease(Worker)!;
        clock.Now += TimeSpan.FromSeconds(61);
        var lease2 = queue.Lease(Worker)!;
        Assert.Equal("a", lease2.Work.CellKey);
        Assert.Equal(2, lease2.Attempt);
        Assert.False(queue.Renew(lease1.LeaseId));
        Assert.False(queue.Complete(new CellCompletion(lease1.LeaseId, true, null)));
        Assert.True(queue.Complete(new CellCompletion(lease2.LeaseId, true, null)));
        Assert.Equal(1, queue.Progress("s").Done);
    }

    [Fact]
    public void Renewal_keeps_a_lease_alive_past_its_first_deadline()
    {
        var clock = new ManualClock();
        var queue = new TrialQueue(clock);
        queue.Enqueue("s", [Work("a")], 0);
        var lease = queue.Lease(Worker)!;
        for (var i = 0; i < 5; i++)
        {
            clock.Now += TimeSpan.FromSeconds(40);
            Assert.True(queue.Renew(lease.LeaseId));
        }

        Assert.Null(queue.Lease(Worker));
        Assert.True(queue.Complete(new CellCompletion(lease.LeaseId, true, null)));
    }

    [Fact]
    public void Failures_are_retried_up_to_the_limit_then_marked_failed_with_the_reason()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a", maxAttempts: 2)], 0);
        var l1 = queue.Lease(Worker)!;
        queue.Complete(new CellCompletion(l1.LeaseId, false, "NaN loss at step 3"));
        var l2 = queue.Lease(Worker)!;
        Assert.Equal(2, l2.Attempt);
        queue.Complete(new CellCompletion(l2.LeaseId, false, "NaN loss at step 4"));
        Assert.Null(queue.Lease(Worker));
        var p = queue.Progress("s");
        Assert.Equal(1, p.Failed);
        Assert.True(p.IsComplete);
        Assert.Equal("NaN loss at step 4", queue.Entries["a"].LastError);

        // Resubmitting gives a failed cell a fresh set of attempts on top of those it had: numbers are never reused.
        Assert.Equal(1, queue.Enqueue("s", [Work("a", maxAttempts: 2)], 0));
        Assert.Equal(3, queue.Lease(Worker)!.Attempt);
    }

    [Fact]
    public void Enqueueing_a_cell_twice_does_not_duplicate_it_and_reused_cells_count_as_done()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a")], alreadyDone: 3);
        Assert.Equal(0, queue.Enqueue("s", [Work("a")], alreadyDone: 3));
        Assert.NotNull(queue.Lease(Worker));
        Assert.Null(queue.Lease(Worker));
        var p = queue.Progress("s");
        Assert.Equal(4, p.Total);
        Assert.Equal(3, p.Done);
        Assert.Equal(3, p.Reused);
    }

    [Fact]
    public void A_rebuilt_queue_keeps_recorded_attempts_and_failed_cells_and_counts_the_rest_as_done()
    {
        var queue = new TrialQueue(new ManualClock());
        var pending = queue.Load("s", total: 5,
        [
            (Work("a", maxAttempts: 3), new AttemptBudget(1, 3), null),
            (Work("b", maxAttempts: 3), new AttemptBudget(3, 3), "NaN loss at step 7"),
        ]);
        Assert.Equal(1, pending);
        var lease = queue.Lease(Worker)!;
        Assert.Equal(("a", 2), (lease.Work.CellKey, lease.Attempt));
        Assert.Null(queue.Lease(Worker));
        var p = queue.Progress("s");
        Assert.Equal((5, 3, 1, 1), (p.Total, p.Done, p.Failed, p.Leased));
        Assert.Equal("NaN loss at step 7", queue.Cells("s").Single(c => c.CellKey == "b").LastError);

        // rerun-failed: the database raised the failed cell's limit; it is queued again with its next attempt number.
        queue.Load("s", total: 5, [(Work("b", maxAttempts: 3), new AttemptBudget(3, 6), "NaN loss at step 7")]);
        var rerun = queue.Lease(Worker)!;
        Assert.Equal(("b", 4), (rerun.Work.CellKey, rerun.Attempt));
    }

    [Fact]
    public void A_claimed_cell_is_leased_to_nobody_else_never_expires_and_is_granted_with_the_durable_attempt_number()
    {
        var clock = new ManualClock();
        var queue = new TrialQueue(clock);
        queue.Enqueue("s", [Work("a", maxAttempts: 5), Work("b")], 0);
        var claim = queue.Claim(Worker)!;
        Assert.Equal(("a", 1, 5), (claim.CellKey, claim.NextAttempt, claim.Limit));
        Assert.Equal("b", queue.Lease(Worker)!.Work.CellKey);
        Assert.Null(queue.Lease(Worker));
        clock.Now += TimeSpan.FromHours(1);                  // a slow database: the claim does not expire
        Assert.False(queue.Renew(claim.LeaseId));            // nor can it be used before it is granted
        var lease = queue.Grant(claim.LeaseId, attempt: 4)!; // the database had counted 3 earlier attempts
        Assert.Equal(4, lease.Attempt);
        Assert.Null(queue.Grant(claim.LeaseId, attempt: 5)); // granted once
        Assert.True(queue.Renew(lease.LeaseId));
    }

    [Fact]
    public void An_abandoned_claim_goes_back_first_without_an_attempt_and_a_grant_over_the_limit_fails_the_cell()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a", maxAttempts: 2), Work("b")], 0);
        var claim = queue.Claim(Worker)!;
        queue.Abandon(claim.LeaseId);                         // the count could not be written
        var again = queue.Claim(Worker)!;
        Assert.Equal(("a", 1), (again.CellKey, again.NextAttempt));
        Assert.Null(queue.Grant(again.LeaseId, attempt: 3));  // another writer had used the budget
        Assert.Equal("failed", queue.Cells("s").Single(c => c.CellKey == "a").State);
        Assert.Equal("b", queue.Lease(Worker)!.Work.CellKey);
    }

    [Fact]
    public void A_released_lease_returns_its_cell_first_without_charging_its_attempt()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a", maxAttempts: 1), Work("b")], 0);
        var lease = queue.Lease(Worker)!;
        var released = queue.ReleaseLease(lease.LeaseId)!;
        Assert.Equal(("a", 2), (released.CellKey, released.Limit));
        Assert.Null(queue.ReleaseLease(lease.LeaseId));
        Assert.False(queue.Renew(lease.LeaseId));
        var next = queue.Lease(Worker)!;
        Assert.Equal(("a", 2), (next.Work.CellKey, next.Attempt)); // a new number, within the raised budget
        Assert.True(queue.Complete(new CellCompletion(next.LeaseId, true, null)));
        Assert.Equal(1, queue.Progress("s").Done);
    }

    [Fact]
    public void A_late_success_from_an_expired_lease_is_accepted_and_the_newer_holder_is_told_to_stop()
    {
        var clock = new ManualClock();
        var queue = new TrialQueue(clock);
        queue.Enqueue("s", [Work("src", maxAttempts: 3), Needing("dep", "src")], 0);
        var old = queue.Lease(Worker)!;
        clock.Now += TimeSpan.FromSeconds(61);
        var newer = queue.Lease(Worker)!;
        Assert.Equal(2, newer.Attempt);

        // A late failure of the old lease changes nothing.
        Assert.False(queue.Complete(new CellCompletion(old.LeaseId, false, "boom", "src", 1)));
        Assert.Equal("leased", StateOf(queue, "src"));

        // The old holder's success is in the database: the cell is done, its dependant ready, the newer holder stops.
        Assert.True(queue.Complete(new CellCompletion(old.LeaseId, true, null, "src", 1)));
        Assert.Equal(("done", "pending"), (StateOf(queue, "src"), StateOf(queue, "dep")));
        Assert.False(queue.Renew(newer.LeaseId));
        Assert.False(queue.Complete(new CellCompletion(newer.LeaseId, false, "stopped", "src", 1)));
        Assert.Equal("done", StateOf(queue, "src"));
    }

    [Fact]
    public void Lease_deadlines_follow_the_monotonic_clock_not_wall_time()
    {
        var clock = new ManualClock();
        var queue = new TrialQueue(clock);
        queue.Enqueue("s", [Work("a")], 0);
        var lease = queue.Lease(Worker)!;
        clock.JumpWallClock(TimeSpan.FromDays(1));            // the wall clock jumps; no time passed
        Assert.True(queue.Renew(lease.LeaseId));
        clock.JumpWallClock(TimeSpan.FromDays(-2));
        clock.Now += TimeSpan.FromSeconds(61);                // time passes without a renewal
        Assert.False(queue.Renew(lease.LeaseId));
    }

    [Fact]
    public void Cells_that_require_a_device_go_only_to_workers_that_have_it()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("gpu-cell", device: "cuda"), Work("any-cell")], 0);
        var cpuWorker = new WorkerCapabilities("cpu-1", "cpu", 0, 0, 1);
        var gpuWorker = new WorkerCapabilities("gpu-1", "cuda", 1, 0, 1);
        Assert.Equal("any-cell", queue.Lease(cpuWorker)!.Work.CellKey);
        Assert.Null(queue.Lease(cpuWorker));
        Assert.Equal("gpu-cell", queue.Lease(gpuWorker)!.Work.CellKey);
    }

    [Fact]
    public void Cancelling_a_sweep_drops_its_pending_cells_and_invalidates_its_leases()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a"), Work("b")], 0);
        queue.Enqueue("t", [Work("c", sweep: "t")], 0);
        var lease = queue.Lease(Worker)!;
        queue.Cancel("s");
        Assert.False(queue.Renew(lease.LeaseId));
        Assert.False(queue.Complete(new CellCompletion(lease.LeaseId, true, null)));
        Assert.Equal("c", queue.Lease(Worker)!.Work.CellKey);
        Assert.Null(queue.Lease(Worker));
        Assert.Equal(0, queue.Progress("s").Total);
    }

    [Fact]
    public void Extending_a_sweep_does_not_count_a_cell_done_in_this_queue_twice()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a")], 0);
        queue.Complete(new CellCompletion(queue.Lease(Worker)!.LeaseId, true, null));

        // extend: "a" is already done (found in the database), "b" is new
        queue.Enqueue("s", [Work("b")], alreadyDone: 1);
        Assert.False(queue.Progress("s").IsComplete);
        queue.Complete(new CellCompletion(queue.Lease(Worker)!.LeaseId, true, null));
        var p = queue.Progress("s");
        Assert.Equal((2, 2, 0), (p.Total, p.Done, p.Failed));
        Assert.True(p.IsComplete);
    }
    private static CellWork Needing(string key, params string[] needs) => Work(key) with { Needs = needs };

    private static void Finish(TrialQueue queue, string key, bool succeeded, string? error = null)
    {
        var lease = queue.Lease(Worker) ?? throw new InvalidOperationException("nothing to lease");
        Assert.Equal(key, lease.Work.CellKey);
        Assert.True(queue.Complete(new CellCompletion(lease.LeaseId, succeeded, error)));
    }

    private static string StateOf(TrialQueue queue, string key) => queue.Cells("s").Single(c => c.CellKey == key).State;

    [Fact]
    public void A_cell_of_a_later_stage_waits_until_every_cell_it_needs_has_succeeded()
    {
        var queue = new TrialQueue(new ManualClock());
        Assert.Equal(4, queue.Enqueue("s", [Needing("fusion", "a", "b"), Work("a"), Work("b"), Work("plain")], 0));
        Assert.Equal("waiting", StateOf(queue, "fusion"));
        var p = queue.Progress("s");
        Assert.Equal((3, 1, 0), (p.Pending, p.Waiting, p.Blocked));

        Finish(queue, "a", true);
        Assert.Equal("waiting", StateOf(queue, "fusion"));   // b is not done yet
        Finish(queue, "b", true);
        Assert.Equal("pending", StateOf(queue, "fusion"));
        Finish(queue, "fusion", true);                        // ready: it goes before "plain", queued earlier
        Finish(queue, "plain", true);
        Assert.True(queue.Progress("s").IsComplete);
    }

    [Fact]
    public void A_failed_dependency_blocks_its_dependants_down_the_stages_with_the_reason_and_the_sweep_still_completes()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("src", maxAttempts: 1), Needing("mid", "src"), Needing("top", "mid"), Work("other")], 0);
        Finish(queue, "src", false, "CUDA out of memory\nstack…");
        Assert.Equal("failed", StateOf(queue, "src"));
        var mid = queue.Cells("s").Single(c => c.CellKey == "mid");
        Assert.Equal("blocked", mid.State);
        Assert.Contains("needs src", mid.LastError, StringComparison.Ordinal);
        Assert.Contains("which failed: CUDA out of memory", mid.LastError, StringComparison.Ordinal);
        Assert.Equal("blocked", StateOf(queue, "top"));
        Assert.Contains("blocked", queue.Cells("s").Single(c => c.CellKey == "top").LastError, StringComparison.Ordinal);

        Finish(queue, "other", true);
        Assert.Null(queue.Lease(Worker));                     // blocked cells are never leased
        var p = queue.Progress("s");
        Assert.Equal((1, 1, 2, 0), (p.Done, p.Failed, p.Blocked, p.Pending));
        Assert.True(p.IsComplete);
    }

    [Fact]
    public void Rerunning_the_failed_dependency_unblocks_its_dependants_which_then_run_after_it()
    {
        var queue = new TrialQueue(new ManualClock());
        CellWork[] cells = [Work("src", maxAttempts: 1), Needing("dep", "src")];
        queue.Enqueue("s", cells, 0);
        Finish(queue, "src", false, "data volume not mounted");
        Assert.Equal("blocked", StateOf(queue, "dep"));

        // rerun-failed reloads the sweep's unfinished cells from the database with reset attempts.
        var pending = queue.Load("s", 2, [(cells[0], new AttemptBudget(1, 2), "data volume not mounted"), (cells[1], new AttemptBudget(0, 1), null)]);
        Assert.Equal(2, pending);                             // src pending, dep waiting
        Assert.Equal(("pending", "waiting"), (StateOf(queue, "src"), StateOf(queue, "dep")));
        Assert.Null(queue.Cells("s").Single(c => c.CellKey == "dep").LastError);
        Finish(queue, "src", true);
        Finish(queue, "dep", true);
        Assert.True(queue.Progress("s").IsComplete);
    }

    [Fact]
    public void Loading_a_dependant_before_its_dependency_does_not_let_it_run_first_and_a_dependency_done_earlier_counts_as_done()
    {
        var queue = new TrialQueue(new ManualClock());
        // The database lists cells by method name, so a dependant may come first; "old" succeeded before the restart.
        queue.Load("s", 3, [(Needing("fusion", "src", "old"), new AttemptBudget(0, 0), null), (Work("src"), new AttemptBudget(0, 0), null)]);
        Assert.Equal("waiting", StateOf(queue, "fusion"));
        Finish(queue, "src", true);
        Finish(queue, "fusion", true);
        Assert.True(queue.Progress("s").IsComplete);
    }
    [Fact]
    public void A_cell_submitted_again_after_its_sweep_was_cancelled_queues_at_the_end_not_at_its_old_place()
    {
        var queue = new TrialQueue(new ManualClock());
        queue.Enqueue("s", [Work("a"), Work("b")], 0);
        queue.Cancel("s");
        queue.Enqueue("t", [Work("x", sweep: "t")], 0);
        queue.Enqueue("u", [Work("b", sweep: "u"), Work("a", sweep: "u")], 0);
        Assert.Equal(["x", "b", "a"], new[] { queue.Lease(Worker)!, queue.Lease(Worker)!, queue.Lease(Worker)! }.Select(l => l.Work.CellKey));
        Assert.Null(queue.Lease(Worker));
    }
}
