using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

/// <summary>The <c>selection:</c> block: parsing, the selection cells it plans, the errors, and the choice from dev losses.</summary>
public sealed class SelectionSpecTests
{
    private static SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, TestVocabulary.Value, Path.GetTempPath());

    private static string Spec(string methods, string selection = "") =>
        TestVocabulary.MinimalSpec.Replace("methods: [finetune]", methods) + selection;

    [Fact]
    public void The_simplest_form_makes_every_method_try_the_rates_on_one_subsample_and_seed_per_size()
    {
        var plan = Plan(Spec("methods: [finetune, lora]", "\nselection: {learning_rate: [1.0e-4, 1.0e-3]}\n"));
        Assert.All(plan.Spec.Methods, m => Assert.Equal(["0.0001", "0.001"], m.Selection!.Candidates["learning_rate"]));
        // 2 methods × 2 rates × 2 sizes × 1 subsample × 1 seed.
        Assert.Equal(8, plan.Selection.Count);
        Assert.All(plan.Selection, s => Assert.Equal((SweepSpec.SelectionStage, 0, 0), (s.Cell.Stage, s.Cell.Subsample, s.Cell.Seed)));
        Assert.All(plan.Selection, s => Assert.Equal(double.Parse(s.Candidate["learning_rate"], System.Globalization.CultureInfo.InvariantCulture), s.Cell.Training.LearningRate));
        Assert.Equal(["selection/finetune", "selection/lora"], plan.Selection.Select(s => s.Cell.ResultsMethod).Distinct().Order());
        // Ordinary keyed cells, never the grid's keys, the same on every plan.
        Assert.Empty(plan.Selection.Select(s => s.Cell.Key).Intersect(plan.Cells.Select(c => c.Key)));
        Assert.Equal(plan.Selection.Select(s => s.Cell.Key), Plan(Spec("methods: [finetune, lora]", "\nselection: {learning_rate: [1.0e-4, 1.0e-3]}\n")).Selection.Select(s => s.Cell.Key));
        Assert.Equal(plan.Selection.Count, plan.Selection.Select(s => s.Cell.Key).Distinct().Count());
    }

    [Fact]
    public void A_methods_own_selection_replaces_the_candidates_and_inherits_the_counts_and_none_opts_out()
    {
        var plan = Plan(Spec("""
            methods:
              - finetune
              - {name: lora, selection: {options.r: [4, 8], learning_rate: [0.01]}}
              - {name: prefix, selection: none}
            """, "\nselection: {learning_rate: [1.0e-4, 1.0e-3], subsamples: 2, seeds: 2}\n"));
        var lora = plan.Spec.Methods.Single(m => m.Name == "lora").Selection!;
        Assert.Equal(["options.r", "learning_rate"], lora.Candidates.Keys);
        Assert.Equal((2, 2), (lora.Subsamples, lora.Seeds));
        Assert.Null(plan.Spec.Methods.Single(m => m.Name == "prefix").Selection);
        var loraCells = plan.Selection.Where(s => s.Method == "lora").ToList();
        Assert.Equal(2 * 2 * 2 * 2, loraCells.Count); // r × sizes × subsamples × seeds
        Assert.Equal(["4", "8"], loraCells.Select(s => s.Cell.MethodOptions["r"]).Distinct().Order());
        Assert.All(loraCells, s => Assert.Equal(0.01, s.Cell.Training.LearningRate));
        Assert.Equal([0, 1], loraCells.Select(s => s.Cell.Subsample).Distinct().Order());
        Assert.Equal([0, 1], loraCells.Select(s => s.Cell.Seed).Distinct().Order());
        Assert.Equal(2 * 2 * 2 * 2, plan.Selection.Count(s => s.Method == "finetune"));
        Assert.DoesNotContain(plan.Selection, s => s.Method == "prefix");
    }

    [Theory]
    [InlineData("selection: {learning_rat: [0.1]}", "selection.learning_rat", "did you mean 'learning_rate'?")]
    [InlineData("selection: {learning_rate: []}", "selection.learning_rate", "non-empty list")]
    [InlineData("selection: {learning_rate: 0.1}", "selection.learning_rate", "non-empty list")]
    [InlineData("selection: {learning_rate: [0.1, 0.1]}", "selection.learning_rate[1]", "listed twice")]
    [InlineData("selection: {learning_rate: [-1]}", "selection.learning_rate[0]", "greater than 0")]
    [InlineData("selection: {base_dropout: [0.1, 2]}", "selection.base_dropout[1]", "'eval' or a rate")]
    [InlineData("selection: {learning_rate: [0.1], subsamples: 3}", "selection.subsamples", "between 1 and 2")]
    [InlineData("selection: {learning_rate: [0.1], by: bleu}", "selection.by", "only dev_loss")]
    [InlineData("selection: {subsamples: 1}", "selection", "no candidates")]
    public void Bad_selection_blocks_are_refused_with_their_path(string yaml, string path, string message)
    {
        var e = Assert.Throws<SpecValidationException>(() => Plan(TestVocabulary.MinimalSpec + "\n" + yaml + "\n"));
        Assert.Contains(e.Errors, x => x.Path == path && x.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Selection_cells_count_toward_the_cell_limit()
    {
        var spec = SpecParser.Parse(Spec("methods: [finetune]", "\nselection: {learning_rate: [0.1, 0.2, 0.3], options.x: [1, 2]}\n"), TestVocabulary.Value);
        Assert.Equal(8 + 3 * 2 * 2, CellCount.Of(spec));
        var error = CellCount.Check(spec, 10);
        Assert.NotNull(error);
        Assert.Contains("20 cells", error.Message, StringComparison.Ordinal);
    }

    private static readonly SelectionSpec Rates = new(new Dictionary<string, IReadOnlyList<string>> { ["learning_rate"] = ["0.0001", "0.001", "0.01"] });

    private static IReadOnlyDictionary<string, string> Rate(string value) => new Dictionary<string, string> { ["learning_rate"] = value };

    [Fact]
    public void The_lowest_mean_dev_loss_wins_and_a_choice_at_the_edge_of_the_list_is_flagged()
    {
        var (interior, _) = SelectionChooser.Choose("lora", null, Rates,
            [(Rate("0.0001"), [2.5, 2.7]), (Rate("0.001"), [2.1, 2.2]), (Rate("0.01"), [2.4, 2.3])], 2);
        Assert.Equal("0.001", interior!.Chosen["learning_rate"]);
        Assert.Empty(interior.Warnings);
        Assert.Equal(MetricStatistics.Of([2.1, 2.2]), interior.Evidence[1].DevLoss);

        var (edge, _) = SelectionChooser.Choose("lora", 50, Rates,
            [(Rate("0.0001"), [2.5, 2.7]), (Rate("0.001"), [2.1, 2.2]), (Rate("0.01"), [1.9, 2.0])], 2);
        Assert.Equal("0.01", edge!.Chosen["learning_rate"]);
        var warning = Assert.Single(edge.Warnings);
        Assert.Contains("lora n=50: the chosen learning_rate 0.01 is the largest of its candidates", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void An_incomplete_selection_chooses_nothing_and_says_which_candidates_lack_cells()
    {
        var (choice, reason) = SelectionChooser.Choose("lora", null, Rates,
            [(Rate("0.0001"), [2.5, 2.7]), (Rate("0.001"), [2.1]), (Rate("0.01"), [double.NaN, 2.0])], 2);
        Assert.Null(choice);
        Assert.Contains("2 of 3 candidates", reason, StringComparison.Ordinal);
        Assert.Contains("learning_rate=0.001: 1/2", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Ties_go_to_the_candidate_listed_first()
    {
        var (choice, _) = SelectionChooser.Choose("lora", null, Rates,
            [(Rate("0.0001"), [2.0]), (Rate("0.001"), [2.0]), (Rate("0.01"), [3.0])], 1);
        Assert.Equal("0.0001", choice!.Chosen["learning_rate"]);
    }
}
