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
        var decisions = SweepSelection.Decide(Sweep, rows);
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
        var decisions = SweepSelection.Decide(Sweep, rows);
        Assert.Empty(SweepSelection.Choices(Sweep.SweepId, decisions, DateTimeOffset.UtcNow));
        Assert.Equal(Plan.Cells.Count(c => c.Method == "finetune"), SweepSelection.Waiting(decisions, [], Candidates));
        Assert.Empty(SweepSelection.Joining([], Candidates, Keys(rows)));
    }

    [Fact]
    public void A_failed_selection_cell_blocks_its_methods_grid_with_the_reason()
    {
        var rows = Rows(c => c.Training.LearningRate == 1.0e-3 ? (false, 0) : (true, 0.9));
        var decisions = SweepSelection.Decide(Sweep, rows);
        var decision = Assert.Single(decisions);
        Assert.Null(decision.Choice);
        Assert.Contains("out of memory", decision.Waiting, StringComparison.Ordinal);
        Assert.Empty(SweepSelection.Choices(Sweep.SweepId, decisions, DateTimeOffset.UtcNow));
        Assert.Equal(0, SweepSelection.Waiting(decisions, [], Candidates));
    }

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
