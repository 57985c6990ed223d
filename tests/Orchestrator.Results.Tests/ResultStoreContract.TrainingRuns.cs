namespace Orchestrator.Results.Tests;

/// <summary>The training-run log: one row per actual training, its first outcome kept, read back per cell.</summary>
public abstract partial class ResultStoreContract
{
    [Fact]
    public async Task Training_runs_are_recorded_once_and_keep_their_first_outcome()
    {
        var start = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var stopped = new TrainingRun("run-1", K("c"), 1, "worker-a", start);
        var succeeded = new TrainingRun("run-2", K("c"), 2, "worker-b", start.AddMinutes(1));
        var died = new TrainingRun("run-3", K("d"), 1, "worker-a", start.AddMinutes(2));
        foreach (var run in new[] { stopped, succeeded, died, stopped })   // a repeated start (a retried write) adds nothing
        {
            await Store.StartTrainingRunAsync(run);
        }

        await Store.FinishTrainingRunAsync("run-1", TrainingRunOutcome.Stopped, start.AddSeconds(30));
        await Store.FinishTrainingRunAsync("run-2", TrainingRunOutcome.Succeeded, start.AddMinutes(2));
        await Store.FinishTrainingRunAsync("run-2", TrainingRunOutcome.Failed, start.AddMinutes(3));   // the first outcome stands

        var runs = await Store.GetTrainingRunsAsync([K("c"), K("d"), K("never-trained")]);
        Assert.Equal(["run-1", "run-2", "run-3"], runs.Select(r => r.RunId));
        Assert.Equal((TrainingRunOutcome.Stopped, start.AddSeconds(30)), (runs[0].Outcome, runs[0].FinishedAt));
        Assert.Equal((TrainingRunOutcome.Succeeded, start.AddMinutes(2), 2, "worker-b"), (runs[1].Outcome, runs[1].FinishedAt, runs[1].Attempt, runs[1].WorkerId));
        Assert.Equal((null, null, K("d")), (runs[2].Outcome, runs[2].FinishedAt, runs[2].CellKey));   // its worker died mid-run
        Assert.Empty(await Store.GetTrainingRunsAsync([K("never-trained")]));
    }
}
