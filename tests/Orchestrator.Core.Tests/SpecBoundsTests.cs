using System.Diagnostics;
using System.Text;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

/// <summary>Values that size memory up front have upper bounds, and a spec's number of cells is capped, each with a precise error.</summary>
public sealed class SpecBoundsTests
{
    private static SpecValidationException Refuse(string yaml) =>
        Assert.Throws<SpecValidationException>(() => SpecParser.Parse(yaml, TestVocabulary.Value));

    private static string WithGrid(string grid) =>
        TestVocabulary.MinimalSpec.Replace("""
              sizes: [50, 100]
              subsamples: 2
              seeds: [0, 1]
            """, grid);

    [Fact]
    public void A_size_near_two_to_the_31_is_refused_instead_of_overflowing_size_plus_dev()
    {
        var ex = Refuse(WithGrid("  sizes: [50, 2147483000]\n  subsamples: 2\n  seeds: [0, 1]\n"));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("grid.sizes[1]", error.Path);
        Assert.Contains("between 1 and 10,000,000", error.Message, StringComparison.Ordinal);
        Assert.Contains("2147483000", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_dev_set_check_does_not_overflow_for_the_largest_int()
    {
        // SubsampleManifest and the planner compare size + dev against the pool in 64 bits.
        var ids = Enumerable.Range(0, 10).Select(i => $"id{i}").ToList();
        var ex = Assert.Throws<DatasetException>(() =>
            Data.Manifests.SubsampleManifest.Create("h", "train", ids, int.MaxValue - 10, 0, 0, nested: false));
        Assert.Contains("has only 10", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("training:\n  max_steps: 5000000\n", "training.max_steps", "between 1 and 1,000,000")]
    [InlineData("training:\n  max_steps: {50: 2000000, 100: 10}\n", "training.max_steps.50", "between 1 and 1,000,000")]
    [InlineData("training:\n  warmup_steps: 99999999\n", "training.warmup_steps", "between 0 and 1,000,000")]
    [InlineData("training:\n  eval_every: 2000000000\n", "training.eval_every", "between 1 and 1,000,000")]
    [InlineData("decoding:\n  beam_size: 1000\n", "decoding.beam_size", "between 1 and 64")]
    [InlineData("decoding:\n  max_new_tokens: 100000\n", "decoding.max_new_tokens", "between 1 and 4,096")]
    public void Values_that_size_memory_have_an_upper_bound_named_in_the_error(string extra, string path, string limit)
    {
        var ex = Refuse(TestVocabulary.MinimalSpec + "\n" + extra);
        var error = Assert.Single(ex.Errors);
        Assert.Equal(path, error.Path);
        Assert.Contains(limit, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Eval_limit_and_pretraining_sizes_are_bounded()
    {
        var ex = Refuse(TestVocabulary.MinimalSpec.Replace("kind: synthetic-e2e", "kind: synthetic-e2e\n  eval_limit: 50000000")
            .Replace("preset: tiny", "preset: tiny\n  pretrain: {corpus: synthetic, steps: 20000000, sequence_length: 900000, documents: 9000000}"));
        Assert.Contains(ex.Errors, e => e.Path == "dataset.eval_limit" && e.Message.Contains("1,000,000", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Path == "model.pretrain.steps" && e.Message.Contains("1,000,000", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Path == "model.pretrain.sequence_length" && e.Message.Contains("65,536", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Path == "model.pretrain.documents" && e.Message.Contains("1,000,000", StringComparison.Ordinal));
    }

    [Fact]
    public void Too_many_cells_is_refused_with_the_count_how_it_arises_and_the_override()
    {
        var spec = SpecParser.Parse(WithGrid("  sizes: [10, 20, 30, 40]\n  subsamples: 1000\n  seeds: 1000\n"), TestVocabulary.Value);
        Assert.Equal(4_000_000, CellCount.Of(spec));
        var error = CellCount.Check(spec, SpecLimits.DefaultMaxCells);
        Assert.NotNull(error);
        Assert.Equal("grid", error.Path);
        Assert.Contains("4,000,000 cells", error.Message, StringComparison.Ordinal);
        Assert.Contains("1 split(s) × 1 method(s) × 4 size(s) × 1000 subsample(s) × 1000 seed(s)", error.Message, StringComparison.Ordinal);
        Assert.Contains("limit of 10,000", error.Message, StringComparison.Ordinal);
        Assert.Contains("--max-cells 4000000", error.Message, StringComparison.Ordinal);
        Assert.Null(CellCount.Check(spec, 4_000_000));
    }

    [Fact]
    public void The_planner_refuses_too_many_cells_before_reading_data_and_accepts_them_under_a_raised_limit()
    {
        var dir = Directory.CreateTempSubdirectory("cells-");
        try
        {
            var yaml = WithGrid("  sizes: [10]\n  subsamples: 2\n  seeds: [0, 1, 2]\n");
            var ex = Assert.Throws<SpecValidationException>(() => SweepPlanner.PlanText(yaml, TestVocabulary.Value, dir.FullName, maxCells: 5));
            Assert.Contains("6 cells", Assert.Single(ex.Errors).Message, StringComparison.Ordinal);
            var plan = SweepPlanner.PlanText(yaml, TestVocabulary.Value, dir.FullName, maxCells: 6);
            Assert.Equal(6, plan.Cells.Count);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Stages_are_counted_together_and_the_largest_stage_is_named()
    {
        var yaml = TestVocabulary.MinimalSpec + """

            stages:
              - name: source
                dataset: {kind: synthetic-e2e}
                methods: [lora, prefix]
                grid: {sizes: [10, 20], subsamples: 50, seeds: 60}
            """;
        var spec = SpecParser.Parse(yaml, TestVocabulary.Value);
        Assert.Equal(2 * 2 * 50 * 60 + 8, CellCount.Of(spec));
        var error = CellCount.Check(spec, 1000);
        Assert.NotNull(error);
        Assert.Equal("stages[0].grid", error.Path);
        Assert.Contains("12,008 cells", error.Message, StringComparison.Ordinal);
        Assert.Contains("stage source: 12,000", error.Message, StringComparison.Ordinal);
        Assert.Contains("stage main: 8", error.Message, StringComparison.Ordinal);
    }
}
