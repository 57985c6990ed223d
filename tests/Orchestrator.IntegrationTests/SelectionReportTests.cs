using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// What <c>results --selection</c>, <c>status</c> and the page say from the decisions and the stored choice: a stored choice is
/// shown (and contradicting evidence flagged), a finished but unstored selection awaits the next run, a failure blocks.
/// </summary>
public sealed class SelectionReportTests
{
    private static readonly SweepPlan Plan = SweepPlanner.PlanText("""
        name: report
        dataset: {kind: synthetic-e2e}
        model: {preset: tiny}
        methods: [lora]
        grid: {sizes: [50], subsamples: 1, seeds: [0, 1]}
        selection: {learning_rate: [1.0e-4, 1.0e-3, 1.0e-2], seeds: 2}
        """, OrchestratorVocabulary.Default, Path.GetTempPath());

    /// <summary>Every selection cell finished; the middle rate has the lowest dev loss.</summary>
    private static IReadOnlyList<SelectionDecision> Finished() => SelectionRound.Decide(Plan, Plan.Selection.ToDictionary(s => s.Cell.Key,
        s => new SelectionCellOutcome(true, s.Cell.Training.LearningRate == 1.0e-3 ? 1.0 + s.Cell.Seed * 0.1 : 2.0, null)));

    private static StoredSelection Stored(string rate) =>
        new(Plan.SweepId, "lora", null, new Dictionary<string, string> { ["learning_rate"] = rate }, "[]", new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void A_stored_choice_is_shown_with_each_candidates_evidence()
    {
        var report = SelectionReport.From(Plan.SweepId, Finished(), [Stored("0.001")]);
        var scope = Assert.Single(report.Scopes);
        Assert.Equal((SelectionReport.Chosen, "0.001"), (scope.State, scope.ChosenValues!["learning_rate"]));
        Assert.Equal([false, true, false], scope.Candidates.Select(c => c.Chosen));
        var chosen = scope.Candidates[1];
        Assert.Equal((2, 2), (chosen.N, chosen.Expected));
        Assert.Equal(1.05, chosen.Mean!.Value, 12);
        Assert.True(chosen.CiLow < 1.0 && chosen.CiHigh > 1.1);
        Assert.Empty(report.Warnings);                            // the middle of three: not at the edge
        Assert.Equal(["lora: chosen learning_rate=0.001 (6/6 selection cells)"], report.Lines());
        Assert.Contains("  * learning_rate=0.001", report.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Evidence_that_would_now_choose_otherwise_is_flagged_and_the_stored_choice_stays()
    {
        var report = SelectionReport.From(Plan.SweepId, Finished(), [Stored("0.01")]);
        Assert.Equal("0.01", report.Scopes[0].ChosenValues!["learning_rate"]);
        Assert.Contains(report.Warnings, w => w.Contains("now favour learning_rate=0.001", StringComparison.Ordinal));
    }

    [Fact]
    public void A_finished_selection_without_a_stored_choice_awaits_the_next_run_and_a_failure_blocks()
    {
        var waiting = SelectionReport.From(Plan.SweepId, Finished(), []);
        Assert.Equal(SelectionReport.Awaiting, waiting.Scopes[0].State);
        Assert.Null(waiting.Scopes[0].ChosenValues);
        Assert.Contains("6/6 selection cells finished; the next run or submit --watch of the spec stores the choice", waiting.Lines()[0], StringComparison.Ordinal);

        var outcomes = Plan.Selection.ToDictionary(s => s.Cell.Key, _ => new SelectionCellOutcome(true, 1.0, null));
        outcomes[Plan.Selection[0].Cell.Key] = new SelectionCellOutcome(false, double.NaN, "CUDA out of memory\n   at Trainer.Step()");
        var blocked = SelectionReport.From(Plan.SweepId, SelectionRound.Decide(Plan, outcomes), []);
        Assert.Equal(SelectionReport.Blocked, blocked.Scopes[0].State);
        Assert.EndsWith(": CUDA out of memory", blocked.Scopes[0].Reason, StringComparison.Ordinal);
        Assert.StartsWith("lora: blocked: lora: 1 selection cell(s) failed", blocked.Lines()[0], StringComparison.Ordinal);
    }
}
