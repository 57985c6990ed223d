using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

/// <summary>
/// The two phases of a sweep with <c>selection:</c>: what runs before the choice, the decision from stored selection cells, and the
/// grid with the chosen values (the same cells as a spec that writes those values by hand).
/// </summary>
public sealed class SelectionRoundTests
{
    private static SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, TestVocabulary.Value, Path.GetTempPath());

    private static string Spec(string methods, string rest = "") =>
        TestVocabulary.MinimalSpec.Replace("methods: [finetune]", methods) + rest;

    private const string TwoRates = "\nselection: {learning_rate: [1.0e-4, 1.0e-3]}\n";

    /// <summary>Every selection cell finished with a dev loss from <paramref name="loss"/> (by the cell's learning rate and size).</summary>
    private static Dictionary<string, SelectionCellOutcome> Finished(SweepPlan plan, Func<double, int, double> loss) =>
        plan.Selection.ToDictionary(s => s.Cell.Key, s => new SelectionCellOutcome(true, loss(s.Cell.Training.LearningRate, s.Cell.Size), null));

    [Fact]
    public void Before_the_choice_the_selection_cells_run_with_the_grid_of_methods_that_select_nothing()
    {
        var plan = Plan(Spec("methods: [finetune, {name: lora, selection: none}]", TwoRates));
        var first = SelectionRound.FirstPhase(plan);
        Assert.Equal(plan.Selection.Select(s => s.Cell.Key).Order(), first.Where(c => c.Stage == SweepSpec.SelectionStage).Select(c => c.Key).Order());
        Assert.Equal(plan.Cells.Where(c => c.Method == "lora").Select(c => c.Key), first.Where(c => c.Stage is null).Select(c => c.Key));
        Assert.DoesNotContain(first, c => c.Stage is null && c.Method == "finetune");
    }

    [Fact]
    public void The_chosen_grid_has_the_keys_of_the_spec_with_the_chosen_value_written_by_hand()
    {
        var plan = Plan(Spec("methods: [finetune, lora]", TwoRates));
        var decisions = SelectionRound.Decide(plan, Finished(plan, (lr, _) => lr == 1.0e-3 ? 1.0 : 2.0));
        Assert.All(decisions, d => Assert.Equal("0.001", d.Choice!.Chosen["learning_rate"]));
        var grid = SelectionRound.ChosenGrid(plan, decisions);

        var byHand = Plan(Spec("methods: [finetune, lora]", "\ntraining: {learning_rate: 1.0e-3}\n"));
        Assert.Equal(byHand.Cells.Select(c => c.Key), grid.Select(c => c.Key));
        Assert.Empty(grid.Select(c => c.Key).Intersect(plan.Cells.Select(c => c.Key))); // the spec's own rate is not what runs
    }

    [Fact]
    public void Until_every_candidate_has_its_cells_nothing_is_chosen_and_the_grid_leaves_that_method_out()
    {
        var plan = Plan(Spec("methods: [finetune, {name: lora, selection: none}]", TwoRates));
        var stored = Finished(plan, (_, _) => 1.0);
        stored.Remove(plan.Selection.First().Cell.Key);
        var decision = Assert.Single(SelectionRound.Decide(plan, stored));
        Assert.Null(decision.Choice);
        Assert.Equal((plan.Selection.Count, plan.Selection.Count - 1), (decision.Expected, decision.Finished));
        Assert.Contains("lack finished selection cells", decision.Waiting, StringComparison.Ordinal);
        var grid = SelectionRound.ChosenGrid(plan, [decision]);
        Assert.Equal(plan.Cells.Where(c => c.Method == "lora").Select(c => c.Key), grid.Select(c => c.Key));
    }

    [Fact]
    public void A_failed_selection_cell_blocks_the_choice_and_is_named_with_its_reason()
    {
        var plan = Plan(Spec("methods: [finetune]", TwoRates));
        var stored = Finished(plan, (lr, _) => lr);
        var failed = plan.Selection[1].Cell;
        stored[failed.Key] = new SelectionCellOutcome(false, double.NaN, "out of memory");
        var decision = Assert.Single(SelectionRound.Decide(plan, stored));
        Assert.Null(decision.Choice);
        var named = Assert.Single(decision.FailedCells);
        Assert.Contains(failed.Label, named, StringComparison.Ordinal);
        Assert.Contains("out of memory", named, StringComparison.Ordinal);
        Assert.Contains("nothing is chosen", decision.Waiting, StringComparison.Ordinal);
        Assert.Empty(SelectionRound.ChosenGrid(plan, [decision]));
    }

    [Fact]
    public void Per_size_each_size_runs_with_its_own_choice_and_the_evidence_is_per_candidate()
    {
        var plan = Plan(Spec("methods: [{name: lora, selection: {options.r: [4, 8], per_size: true}}]", ""));
        // r = 4 is better at size 50, r = 8 at size 100.
        var stored = plan.Selection.ToDictionary(s => s.Cell.Key,
            s => new SelectionCellOutcome(true, (s.Cell.Size, s.Cell.MethodOptions["r"]) is (50, "4") or (100, "8") ? 1.0 : 2.0, null));
        var decisions = SelectionRound.Decide(plan, stored);
        Assert.Equal([(50, "4"), (100, "8")], decisions.Select(d => (d.Size!.Value, d.Choice!.Chosen["options.r"])));
        Assert.All(decisions, d => Assert.Equal([(1, 1), (1, 1)], d.Evidence.Select(e => (e.DevLoss.N, e.Expected))));
        var grid = SelectionRound.ChosenGrid(plan, decisions);
        Assert.Equal(plan.Cells.Count, grid.Count);
        Assert.All(grid, c => Assert.Equal(c.Size == 50 ? "4" : "8", c.MethodOptions["r"]));
    }

    [Theory]
    [InlineData("""{"best_dev_loss": 1.25}""", 1.25)]
    [InlineData("""{"best_dev_loss": "NaN"}""", double.NaN)]
    [InlineData("""{"steps": 3}""", double.NaN)]
    public void The_best_dev_loss_is_read_from_the_provenance(string json, double expected) =>
        Assert.Equal(expected, SelectionRound.BestDevLoss(json));

    [Fact]
    public void Each_candidates_grid_has_the_keys_of_the_spec_with_that_value_written_by_hand()
    {
        var plan = Plan(Spec("methods: [finetune, {name: lora, selection: none}]", TwoRates));
        var grids = SelectionRound.CandidateGrids(plan, SpecLimits.DefaultMaxCells);
        Assert.Equal(["learning_rate=0.0001", "learning_rate=0.001"], grids.Select(g => SelectionSpec.Label(g.Candidate)));
        Assert.All(grids, g => Assert.Equal("finetune", g.Method));
        foreach (var grid in grids)
        {
            var byHand = Plan(Spec("methods: [finetune]", $"\ntraining: {{learning_rate: {grid.Candidate["learning_rate"]}}}\n"));
            Assert.Equal(byHand.Cells.Select(c => c.Key), grid.Cells.Select(c => c.Key));
        }

        // What the client decides after the choice is one of these grids, cell for cell.
        var decisions = SelectionRound.Decide(plan, Finished(plan, (lr, _) => lr == 1.0e-4 ? 1.0 : 2.0));
        Assert.Equal(grids[0].Cells.Select(c => c.Key),
            SelectionRound.ChosenGrid(plan, decisions).Where(c => c.Method == "finetune").Select(c => c.Key));
    }

    [Fact]
    public void Candidate_grids_that_would_exceed_the_cell_limit_are_refused_with_the_count()
    {
        var plan = Plan(Spec("methods: [finetune, lora]", TwoRates));
        var total = SelectionRound.FirstPhase(plan).Count + 2 * plan.Cells.Count;
        Assert.Equal(4, SelectionRound.CandidateGrids(plan, total).Count);
        var refused = Assert.Throws<ArgumentException>(() => SelectionRound.CandidateGrids(plan, total - 1));
        Assert.Contains("2 candidates (2 × 8 cells)", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"over the limit of {total - 1:N0} (--max-cells)", refused.Message, StringComparison.Ordinal);
    }
}
