using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Grains;
using Orchestrator.Results;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// What the sweep grain decides from the database alone: which stored candidate cells join the sweep once a choice is stored,
/// how many grid cells still wait for one, and that a failed selection cell keeps its method's grid out.
/// </summary>
public sealed class SweepSelectionTests
{
    private const string Yaml = """
        name: sweep-selection
        dataset:
          kind: synthetic-e2e
        model:
          preset: tiny
        methods: [finetune, {name: lora, selection: none}]
        grid:
          sizes: [50, 100]
          subsamples: 1
          seeds: [0]
        selection: {learning_rate: [1.0e-4, 1.0e-3]}
        """;

    private static readonly SweepPlan Plan = SweepPlanner.PlanText(Yaml, OrchestratorVocabulary.Default, Path.GetTempPath());

    private static readonly SweepRecord Sweep = new(Plan.SweepId, "sweep-selection", Plan.SpecYaml, Plan.SpecHash, DateTimeOffset.UtcNow, 0);

    private static readonly IReadOnlyList<CandidateCell> Candidates = SelectionRound.CandidateGrids(Plan, SpecLimits.DefaultMaxCells)
        .SelectMany(g => g.Cells.Select(c => new CandidateCell(g.Method, g.Candidate, c.Key, c.ToCanonicalJson()))).ToList();

    /// <summary>The first phase's cells as stored, each selection cell with the outcome <paramref name="outcome"/> gives (null: unfinished).</summary>
    private static List<(CellDescriptor Cell, CellResultRecord? Result)> Rows(Func<CellDefinition, (bool Succeeded, double Loss)?> outcome) =>
        SelectionRound.FirstPhase(Plan).Select(c =>
        {
            var descriptor = new CellDescriptor(c.Key, c.Dataset.Kind, c.Split, c.ResultsMethod, c.Size, c.Subsample, c.Seed, c.ToCanonicalJson());
            var result = c.Stage == SweepSpec.SelectionStage && outcome(c) is { } o
                ? new CellResultRecord(c.Key, 1, o.Succeeded ? CellStatus.Succeeded : CellStatus.Failed, new Dictionary<string, double>(),
                    o.Succeeded ? null : "out of memory", "w", "cpu", 1, 0, $$"""{"best_dev_loss": {{o.Loss}}}""", [], DateTimeOffset.UtcNow)
                : null;
            return (descriptor, result);
        }).ToList();

    private static IReadOnlySet<string> Keys(IEnumerable<(CellDescriptor Cell, CellResultRecord? Result)> rows) =>
        rows.Select(r => r.Cell.CellKey).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void Once_every_selection_cell_finished_the_lower_dev_loss_is_chosen_and_only_its_grid_joins()
    {
        var rows = Rows(c => (true, c.Training.LearningRate == 1.0e-3 ? 0.5 : 0.9));
        var decisions = SweepSelection.Decide(Sweep, rows, NoLimits);
        var choices = SweepSelection.Choices(Sweep.SweepId, decisions, DateTimeOffset.UtcNow);
        var choice = Assert.Single(choices);
        Assert.Equal(("finetune", "0.001"), (choice.Method, choice.Chosen["learning_rate"]));
        Assert.Contains("\"chosen\":true", choice.EvidenceJson, StringComparison.Ordinal);

        var joining = SweepSelection.Joining(choices, Candidates, Keys(rows));
        var byHand = SweepPlanner.PlanText(Yaml.Replace("selection: {learning_rate: [1.0e-4, 1.0e-3]}", "training: {learning_rate: 1.0e-3}", StringComparison.Ordinal),
            OrchestratorVocabulary.Default, Path.GetTempPath());
        Assert.Equal(byHand.Cells.Where(c => c.Method == "finetune").Select(c => c.Key).Order(), joining.Select(c => c.CellKey).Order());
        Assert.Equal(0, SweepSelection.Waiting(decisions, choices, Candidates));

        // Once joined, nothing joins again.
        Assert.Empty(SweepSelection.Joining(choices, Candidates, Keys(rows).Concat(joining.Select(c => c.CellKey)).ToHashSet()));
    }

    [Fact]
    public void While_selection_cells_run_nothing_is_chosen_and_one_candidates_grid_counts_as_waiting()
    {
        var rows = Rows(c => c.Training.LearningRate == 1.0e-3 ? (true, 0.5) : null);
        var decisions = SweepSelection.Decide(Sweep, rows, NoLimits);
        Assert.Empty(SweepSelection.Choices(Sweep.SweepId, decisions, DateTimeOffset.UtcNow));
        Assert.Equal(Plan.Cells.Count(c => c.Method == "finetune"), SweepSelection.Waiting(decisions, [], Candidates));
        Assert.Empty(SweepSelection.Joining([], Candidates, Keys(rows)));
    }

    [Fact]
    public void A_failed_selection_cell_blocks_its_methods_grid_with_the_reason()
    {
        var rows = Rows(c => c.Training.LearningRate == 1.0e-3 ? (false, 0) : (true, 0.9));
        var decisions = SweepSelection.Decide(Sweep, rows, NoLimits);
        var decision = Assert.Single(decisions);
        Assert.Null(decision.Choice);
        Assert.Contains("out of memory", decision.Waiting, StringComparison.Ordinal);
        Assert.Empty(SweepSelection.Choices(Sweep.SweepId, decisions, DateTimeOffset.UtcNow));
        Assert.Equal(0, SweepSelection.Waiting(decisions, [], Candidates));
    }

    [Fact]
    public void A_selection_cell_that_failed_an_attempt_before_its_last_is_being_retried_and_blocks_nothing()
    {
        // The 1e-3 cells failed their attempt 1 (as when a worker hit a transient error); the queue gives them attempt 2.
        var rows = Rows(c => c.Training.LearningRate == 1.0e-3 ? (false, 0) : (true, 0.9));
        var failedKeys = rows.Where(r => r.Result is { Status: CellStatus.Failed }).Select(r => r.Cell.CellKey).ToList();
        Assert.NotEmpty(failedKeys);

        var retrying = failedKeys.ToDictionary(k => k, _ => 2);
        var decision = Assert.Single(SweepSelection.Decide(Sweep, rows, retrying));
        Assert.Null(decision.Choice);
        Assert.Empty(decision.FailedCells);
        Assert.DoesNotContain("out of memory", decision.Waiting ?? "", StringComparison.Ordinal);
        // The grid still waits for the choice: the sweep is not complete and nothing says it will not run.
        Assert.Equal(Plan.Cells.Count(c => c.Method == "finetune"), SweepSelection.Waiting([decision], [], Candidates));

        // The retry succeeds: the choice is made as if the first attempt had not failed.
        var retried = rows.Select(r => r.Result is { Status: CellStatus.Failed } f
            ? (r.Cell, (CellResultRecord?)(f with { Attempt = 2, Status = CellStatus.Succeeded, Error = null, ProvenanceJson = """{"best_dev_loss": 0.5}""" }))
            : r).ToList();
        var chosen = Assert.Single(SweepSelection.Choices(Sweep.SweepId, SweepSelection.Decide(Sweep, retried, NoLimits), DateTimeOffset.UtcNow));
        Assert.Equal("0.001", chosen.Chosen["learning_rate"]);

        // On its last allowed attempt the failure is final and blocks the method, naming the reason.
        var final = Assert.Single(SweepSelection.Decide(Sweep, rows, failedKeys.ToDictionary(k => k, _ => 1)));
        Assert.Null(final.Choice);
        Assert.Contains("out of memory", final.Waiting, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_attempt_limits_come_from_the_database_a_first_failed_attempt_is_retried_and_a_last_one_blocks()
    {
        var dir = Directory.CreateTempSubdirectory("orch-selection-retry-");
        try
        {
            await using var store = ResultStores.Sqlite(Path.Combine(dir.FullName, "results.db"));
            await store.EnsureSchemaAsync();
            var rows = Rows(c => c.Training.LearningRate == 1.0e-3 ? (false, 0) : (true, 0.9));
            await store.SaveSweepAsync(Sweep with { CellCount = rows.Count }, rows.Select(r => r.Cell).ToList());
            foreach (var (cell, result) in rows.Where(r => r.Result is not null))
            {
                Assert.Equal(1, await store.BeginAttemptAsync(cell.CellKey, limit: 2)); // as the queue leases it (max_attempts 2)
                await store.UpsertResultAsync(result!);
            }

            async Task<SelectionDecision> DecideAsync() => Assert.Single(SweepSelection.Decide(Sweep, await store.GetSweepCellsAsync(Sweep.SweepId),
                await SweepSelection.AttemptLimitsAsync(store, Sweep.SweepId)));

            var retrying = await DecideAsync();
            Assert.Empty(retrying.FailedCells);
            Assert.Null(retrying.Choice);

            foreach (var (cell, result) in rows.Where(r => r.Result is { Status: CellStatus.Failed }))
            {
                Assert.Equal(2, await store.BeginAttemptAsync(cell.CellKey, limit: 2));
                await store.UpsertResultAsync(result! with { Attempt = 2 });
            }

            var blocked = await DecideAsync();
            Assert.Equal(2, blocked.FailedCells.Count);
            Assert.Contains("2 selection cell(s) failed", blocked.Waiting, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static readonly IReadOnlyDictionary<string, int> NoLimits = new Dictionary<string, int>();

    [Fact]
    public void The_chosen_candidate_is_marked_whatever_the_order_of_its_values()
    {
        static SelectionEvidence Evidence(params (string Key, string Value)[] values) =>
            new(values.ToDictionary(v => v.Key, v => v.Value), 2, Orchestrator.Core.Aggregation.MetricStatistics.Of([1.0, 1.2]));
        var decision = new SelectionDecision("lora", null, 4, 4, null, null, [],
            [Evidence(("learning_rate", "0.001"), ("options.r", "4")), Evidence(("learning_rate", "0.001"), ("options.r", "8"))]);
        var chosen = new Dictionary<string, string> { ["options.r"] = "8", ["learning_rate"] = "0.001" }; // another order

        var rows = SelectionCandidate.Of(decision, chosen);
        Assert.Equal([false, true], rows.Select(r => r.Chosen));
        Assert.Equal("learning_rate=0.001 options.r=8", rows[1].Label); // shown in the spec's order
        Assert.Contains("\"chosen\":true", SweepSelection.EvidenceJson(decision, chosen), StringComparison.Ordinal);
    }
}
