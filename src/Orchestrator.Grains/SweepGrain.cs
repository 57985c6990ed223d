using Microsoft.Extensions.Logging;
using Orchestrator.Abstractions;
using Orchestrator.Core.Cells;
using Orchestrator.Results;

namespace Orchestrator.Grains;

/// <summary>
/// One sweep (key: its id). It records the sweep and its cells in the results database (the source of truth),
/// leaves out cells that already have a successful result (resubmitting does no new work), and drives the queue
/// for the sweep's lifecycle: extend, cancel, resume, rerun-failed.
/// <para>
/// With <c>selection:</c> the submission carries every candidate's grid (stored with the sweep): the grain queues the selection
/// cells, and once a method's selection cells have all finished it makes the choice from the stored dev losses, stores it
/// (the first choice is kept), and queues that candidate's grid. It checks when the queue reports that a selection cell has
/// ended, on every submit, extend and resume, when a restarted queue reloads the sweep, and every 10 s while choices are due (a
/// fallback timer, should a one-way notice be lost), so no client has to stay attached.
/// </para>
/// </summary>
public sealed class SweepGrain(IResultStore store, ILogger<SweepGrain> logger) : Grain, ISweepGrain
{
    /// <summary>
    /// How often a sweep whose grid waits for a choice checks its selection cells besides the queue's notice that one has ended
    /// (<see cref="ITrialQueueGrain.CompleteAsync"/> calls <see cref="AdvanceSelectionAsync"/>): a fallback.
    /// </summary>
    private static readonly TimeSpan SelectionPoll = TimeSpan.FromSeconds(10);

    private IGrainTimer? _selectionTimer;

    /// <summary>Grid cells waiting for a choice, as of the last check (counted as waiting in the progress).</summary>
    private int _waitingGrid;

    private string SweepId => this.GetPrimaryKeyString();

    private ITrialQueueGrain Queue => GrainFactory.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);

    public Task<SubmitResult> SubmitAsync(SweepSubmission submission) => SaveAndQueueAsync(submission, "submitted");

    public async Task<SubmitResult> ExtendAsync(SweepSubmission submission)
    {
        _ = await store.FindSweepAsync(SweepId) ?? throw new ArgumentException($"cannot extend sweep '{SweepId}': it does not exist");
        var existing = await store.GetSweepCellsAsync(SweepId);

        // A grid already queued for a choice stays: it is among the candidates' cells, not the submission's own.
        var candidateKeys = submission.Candidates.SelectMany(g => g.Cells).ToDictionary(c => c.CellKey, StringComparer.Ordinal);
        var submitted = submission.Cells.Select(c => c.CellKey).ToHashSet(StringComparer.Ordinal);
        var chosenBefore = existing.Where(c => candidateKeys.ContainsKey(c.Cell.CellKey) && !submitted.Contains(c.Cell.CellKey))
            .Select(c => candidateKeys[c.Cell.CellKey]).ToList();
        submission = submission with { Cells = [.. submission.Cells, .. chosenBefore] };
        var kept = submission.Cells.Select(c => c.CellKey).ToHashSet(StringComparer.Ordinal);
        var dropped = existing.Where(c => !kept.Contains(c.Cell.CellKey)).ToList();
        if (dropped.Count > 0)
        {
            var example = dropped[0].Cell;
            throw new ArgumentException(
                $"cannot extend sweep '{SweepId}': extend may only add seeds, subsamples, sizes or methods, but {dropped.Count} of its " +
                $"{existing.Count} existing cells would be dropped or changed (for example {example.Method} n={example.Size} sub{example.Subsample} seed{example.Seed}); " +
                "submit the changed spec as a new sweep instead");
        }

        return await SaveAndQueueAsync(submission, "extended");
    }

    public async Task CancelAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Cancelled);
        StopSelectionTimer();
        await Queue.CancelSweepAsync(SweepId);
        logger.LogInformation("Sweep {SweepId} cancelled", SweepId);
    }

    public async Task<int> ResumeAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Active);
        var queued = await Queue.ReloadSweepAsync(SweepId, resetFailed: false);
        return queued + await AdvanceSelectionOnceAsync();
    }

    public async Task<int> RerunFailedAsync()
    {
        await RequireSweepAsync();
        await store.SetSweepStatusAsync(SweepId, SweepStatus.Active);
        var queued = await Queue.ReloadSweepAsync(SweepId, resetFailed: true);
        return queued + await AdvanceSelectionOnceAsync();
    }

    public async Task<SweepProgress> GetProgressAsync()
    {
        var progress = await Queue.GetProgressAsync(SweepId);
        return _waitingGrid == 0 ? progress : progress with { Total = progress.Total + _waitingGrid, Waiting = progress.Waiting + _waitingGrid };
    }

    public async Task AdvanceSelectionAsync() => await AdvanceSelectionOnceAsync();

    /// <summary>
    /// Makes every choice that is due and queues its candidate's grid; returns how many cells were queued. Keeps the timer
    /// running while some grid still waits for a choice.
    /// </summary>
    private async Task<int> AdvanceSelectionOnceAsync()
    {
        var candidates = await store.GetCandidateCellsAsync(SweepId);
        if (candidates.Count == 0 || await store.FindSweepAsync(SweepId) is not { } sweep || sweep.SweepId != SweepId)
        {
            _waitingGrid = 0;
            StopSelectionTimer();
            return 0;
        }

        if (sweep.Status == SweepStatus.Cancelled)
        {
            StopSelectionTimer(); // resume checks again
            return 0;
        }

        var rows = await store.GetSweepCellsAsync(SweepId);
        var decisions = SweepSelection.Decide(sweep, rows, await SweepSelection.AttemptLimitsAsync(store, SweepId));
        var due = SweepSelection.Choices(SweepId, decisions, DateTimeOffset.UtcNow);
        var stored = await store.GetSelectionsAsync(SweepId);
        if (due.Any(d => !stored.Any(s => s.Method == d.Method && s.Size == d.Size)))
        {
            await store.SaveSelectionsAsync(due);
            stored = await store.GetSelectionsAsync(SweepId);
        }

        var queued = 0;
        var joining = SweepSelection.Joining(stored, candidates, rows.Select(r => r.Cell.CellKey).ToHashSet(StringComparer.Ordinal));
        if (joining.Count > 0)
        {
            // The sweep's cells as stored, then the chosen grid: a failed selection cell stays failed (the choice was made without it).
            var cells = rows.Select(r => (r.Cell.CellKey, r.Cell.CellJson)).Concat(joining.Select(c => (c.CellKey, c.CellJson)))
                .Select(c => (c.CellKey, c.CellJson, Cell: CellDefinition.FromJson(c.CellJson))).ToList();
            var needed = cells.SelectMany(c => c.Cell.Dependencies).ToHashSet(StringComparer.Ordinal);
            var work = cells.Select(c => new CellWork(SweepId, c.CellKey, c.CellJson, c.Cell.Label, sweep.MaxAttempts, sweep.LeaseSeconds,
                sweep.Metrics, sweep.RequiredDevice, c.Cell.QueuePackGroup, c.Cell.Needs,
                Core.Specs.ExecutionSpec.KeepsArtifact(sweep.ArtifactRetention, needed.Contains(c.CellKey)))).ToList();
            var submission = new SweepSubmission(SweepId, sweep.Name, sweep.SpecYaml, sweep.SpecHash, work, sweep.MaxAttempts, sweep.LeaseSeconds, sweep.Metrics,
                sweep.RequiredDevice, sweep.ArtifactRetention) { RetryFailed = false };
            var result = await SaveAndQueueAsync(submission, "grown by its selection", sweep.SubmittedAt, sweep.Status);
            queued = result.Queued;
        }

        _waitingGrid = SweepSelection.Waiting(decisions, stored, candidates);

        // A method blocked by a failed selection cell is watched again while the sweep has cells to run (after rerun-failed
        // its cell is queued again, and its stored failure stays until the new attempt ends).
        var undecided = decisions.Any(d => !stored.Any(c => c.Method == d.Method && c.Size == d.Size));
        var running = undecided && _waitingGrid == 0 && await Queue.GetProgressAsync(SweepId) is { } progress
            && progress.Pending + progress.Leased + progress.Waiting > 0;
        if (_waitingGrid > 0 || running)
        {
            _selectionTimer ??= this.RegisterGrainTimer(_ => AdvanceSelectionOnceAsync(),
                new GrainTimerCreationOptions(SelectionPoll, SelectionPoll) { KeepAlive = true });
        }
        else
        {
            StopSelectionTimer();
        }

        return queued;
    }

    private void StopSelectionTimer()
    {
        _selectionTimer?.Dispose();
        _selectionTimer = null;
    }

    public Task<IReadOnlyList<CellState>> GetCellsAsync() => Queue.GetCellsAsync(SweepId);

    private async Task<SubmitResult> SaveAndQueueAsync(SweepSubmission submission, string verb)
    {
        var result = await SaveAndQueueAsync(submission, verb, DateTimeOffset.UtcNow, SweepStatus.Active);
        if (submission.Candidates.Count > 0)
        {
            await store.SaveCandidateCellsAsync(SweepId, submission.Candidates
                .SelectMany(g => g.Cells.Select(c => new CandidateCell(g.Method, g.Candidate, c.CellKey, c.CellJson))).ToList());
            var grid = await AdvanceSelectionOnceAsync();
            result = result with { Total = result.Total + _waitingGrid, Queued = result.Queued + grid };
        }

        return result;
    }

    private async Task<SubmitResult> SaveAndQueueAsync(SweepSubmission submission, string verb, DateTimeOffset submittedAt, string status)
    {
        if (submission.SweepId != SweepId)
        {
            throw new ArgumentException($"submission for sweep {submission.SweepId} sent to sweep grain {SweepId}");
        }

        var descriptors = submission.Cells.Select(Describe).ToList();

        // Activate the queue before the sweep is in the database: an activation rebuilds the queue from the
        // database, and must not count this submission's cells as already queued.
        await Queue.GetProgressAsync(SweepId);
        await store.SaveSweepAsync(
            new SweepRecord(SweepId, submission.Name, submission.SpecYaml, submission.SpecHash, submittedAt, submission.Cells.Count)
            {
                Status = status,
                MaxAttempts = submission.MaxAttempts,
                LeaseSeconds = submission.LeaseSeconds,
                Metrics = submission.Metrics,
                RequiredDevice = submission.RequiredDevice,
                ArtifactRetention = submission.ArtifactRetention,
            },
            descriptors);

        var done = await store.GetSucceededKeysAsync(submission.Cells.Select(c => c.CellKey));

        // A finished cell whose trained method a later stage needs but that kept none (it ran in a sweep without stages, or
        // its artifact was collected) is trained again: its dependants cannot run without it.
        var mustKeep = submission.Cells.Where(c => c.KeepArtifact && done.Contains(c.CellKey)).Select(c => c.CellKey).ToList();
        if (mustKeep.Count > 0)
        {
            var stored = await store.GetArtifactsAsync(mustKeep);
            done = done.Where(k => !mustKeep.Contains(k) || stored.ContainsKey(k)).ToHashSet(StringComparer.Ordinal);
        }

        var todo = submission.Cells.Where(c => !done.Contains(c.CellKey)).ToList();
        if (!submission.RetryFailed)
        {
            var failed = (await store.GetUnfinishedCellsAsync(SweepId)).Where(u => u.LastError is not null).Select(u => u.CellKey).ToHashSet(StringComparer.Ordinal);
            todo = todo.Where(c => !failed.Contains(c.CellKey)).ToList();
        }

        var queued = await Queue.EnqueueAsync(SweepId, todo, submission.Cells.Count - todo.Count);
        logger.LogInformation("Sweep {SweepId} {Verb}: {Total} cells, {Done} already done, {Queued} queued",
            SweepId, verb, submission.Cells.Count, submission.Cells.Count - todo.Count, queued);
        return new SubmitResult(SweepId, submission.Cells.Count, queued, submission.Cells.Count - todo.Count);
    }

    private async Task RequireSweepAsync()
    {
        if (await store.FindSweepAsync(SweepId) is not { } sweep || sweep.SweepId != SweepId)
        {
            throw new ArgumentException($"no sweep with id '{SweepId}'");
        }
    }

    private static CellDescriptor Describe(CellWork work)
    {
        var cell = CellDefinition.FromJson(work.CellJson);
        if (cell.Key != work.CellKey)
        {
            throw new ArgumentException($"cell {work.Label}: key {work.CellKey} does not match its definition ({cell.Key})");
        }

        return new CellDescriptor(work.CellKey, cell.Dataset.Kind, cell.Split, cell.ResultsMethod, cell.Size, cell.Subsample, cell.Seed, work.CellJson);
    }
}
