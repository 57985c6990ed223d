using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

/// <summary>Staged specs: earlier stages, per-method needs, the checks on the stage graph, and how cells carry their dependencies.</summary>
public sealed class StageSpecTests
{
    private const string Staged = """
        name: staged
        stages:
          - name: src-a
            dataset: {kind: synthetic-e2e, options: {mrs: 80, seed: 1}}
            methods: [lora]
            grid: {sizes: [20], subsamples: 1, seeds: [0, 1]}
          - name: src-b
            dataset: {kind: synthetic-e2e, options: {mrs: 80, seed: 2}}
            methods: [lora, prefix]
            grid: {sizes: [20, 30], subsamples: 2, seeds: [0]}
            training: {learning_rate: 0.01}
        dataset:
          kind: synthetic-e2e
        model:
          preset: tiny
        methods:
          - name: prefix
            needs:
              - {stage: src-a, seed: same}
              - {stage: src-b, method: lora, size: 20, subsample: 1}
          - finetune
        grid:
          sizes: [50]
          subsamples: 1
          seeds: [0, 1]
        """;

    private static SweepSpec Parse(string yaml) => SpecParser.Parse(yaml, TestVocabulary.Value);

    private static SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, TestVocabulary.Value, Path.GetTempPath());

    private static SpecValidationException Refuse(string yaml) =>
        Assert.Throws<SpecValidationException>(() => Parse(yaml));

    [Fact]
    public void Earlier_stages_expand_first_and_a_needing_cell_carries_the_selected_keys_in_order()
    {
        var plan = Plan(Staged);
        var srcA = plan.Cells.Where(c => c.Stage == "src-a").ToList();
        var srcB = plan.Cells.Where(c => c.Stage == "src-b").ToList();
        var main = plan.Cells.Where(c => c.Stage is null).ToList();
        Assert.Equal((2, 2 * 2 * 2 * 1 + 0, 4), (srcA.Count, srcB.Count, main.Count));
        Assert.Equal(plan.Cells.Take(srcA.Count + srcB.Count), srcA.Concat(srcB));   // earlier stages first
        Assert.All(srcB.Where(c => c.Method == "lora"), c => Assert.Equal(0.01, c.Training.LearningRate));
        Assert.Equal("src-b/lora", srcB[0].ResultsMethod);
        Assert.StartsWith("src-b/lora n=20", srcB[0].Label, StringComparison.Ordinal);

        var bLora = srcB.Single(c => c is { Method: "lora", Size: 20, Subsample: 1 });
        foreach (var seed in new[] { 0, 1 })
        {
            var prefix = main.Single(c => c.Method == "prefix" && c.Seed == seed);
            Assert.Equal([srcA.Single(c => c.Seed == seed).Key, bLora.Key], prefix.Dependencies);
        }

        Assert.All(main.Where(c => c.Method == "finetune"), c => Assert.Empty(c.Dependencies));
    }

    [Fact]
    public void A_cells_key_includes_the_keys_it_needs_and_unstaged_cells_keep_their_old_json()
    {
        var plan = Plan(Staged);
        var prefix = plan.Cells.First(c => c.Method == "prefix" && c.Stage is null);
        Assert.NotEqual(prefix.Key, (prefix with { Needs = null }).Key);
        Assert.NotEqual(prefix.Key, (prefix with { Needs = [prefix.Dependencies[1], prefix.Dependencies[0]] }).Key);
        Assert.Equal(prefix.Key, CellDefinition.FromJson(prefix.ToCanonicalJson()).Key);

        // A cell of a spec without stages writes no stage, needs or reuse_training: keys computed before stages existed hold.
        var plain = Plan(TestVocabulary.MinimalSpec).Cells[0];
        var json = plain.ToCanonicalJson();
        Assert.DoesNotContain("\"stage\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"needs\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"reuse_training\"", json, StringComparison.Ordinal);
        var finetune = plan.Cells.First(c => c.Method == "finetune" && c.Stage is null);
        Assert.DoesNotContain("\"needs\"", finetune.ToCanonicalJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void Stages_are_expanded_in_dependency_order_whatever_their_declared_order()
    {
        var yaml = """
            name: chain
            stages:
              - name: second
                dataset: {kind: synthetic-e2e}
                methods: [{name: lora, needs: first}]
                grid: {sizes: [20], subsamples: 1, seeds: [0]}
              - name: first
                dataset: {kind: synthetic-e2e}
                methods: [lora]
                grid: {sizes: [20], subsamples: 1, seeds: [0]}
            dataset: {kind: synthetic-e2e}
            model: {preset: tiny}
            methods: [{name: prefix, needs: [second]}]
            grid: {sizes: [50], subsamples: 1, seeds: [0]}
            """;
        var cells = Plan(yaml).Cells;
        Assert.Equal(["first", "second", null], cells.Select(c => c.Stage));
        Assert.Equal([cells[0].Key], cells[1].Dependencies);
        Assert.Equal([cells[1].Key], cells[2].Dependencies);
    }

    [Theory]
    [InlineData("{stage: nowhere}", "methods[0].needs", "unknown stage 'nowhere' (known: src-a, src-b)")]
    [InlineData("{stage: src-b, method: finetune}", "methods[0].needs.method", "stage 'src-b' has no method 'finetune'")]
    [InlineData("{stage: src-b, size: 40}", "methods[0].needs.size", "stage 'src-b' has no size 40")]
    [InlineData("{stage: src-b, subsample: 2}", "methods[0].needs.subsample", "subsamples 0..1, not 2")]
    [InlineData("{stage: src-b, seed: 3}", "methods[0].needs.seed", "stage 'src-b' has no seed 3")]
    [InlineData("{stage: src-b, seed: same}", "methods[0].needs.seed", "'seed: same' but stage 'src-b' has no seed 1")]
    [InlineData("{stage: src-b, bogus: 1}", "methods[0].needs", "bogus")]
    public void A_selector_that_cannot_match_is_refused_with_its_path(string needs, string path, string message)
    {
        var yaml = Staged.Replace("""
            needs:
                  - {stage: src-a, seed: same}
                  - {stage: src-b, method: lora, size: 20, subsample: 1}
            """, $"needs: {needs}");
        var ex = Refuse(yaml);
        Assert.Contains(ex.Errors, e => e.Path.StartsWith(path, StringComparison.Ordinal) && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Cycles_self_references_reserved_and_duplicate_names_are_refused()
    {
        var cycle = Refuse("""
            name: c
            stages:
              - {name: a, dataset: {kind: synthetic-e2e}, methods: [{name: lora, needs: b}], grid: {sizes: [20], subsamples: 1, seeds: [0]}}
              - {name: b, dataset: {kind: synthetic-e2e}, methods: [{name: lora, needs: a}], grid: {sizes: [20], subsamples: 1, seeds: [0]}}
            dataset: {kind: synthetic-e2e}
            model: {preset: tiny}
            methods: [{name: prefix, needs: a}]
            grid: {sizes: [50], subsamples: 1, seeds: [0]}
            """);
        Assert.Contains(cycle.Errors, e => e.Path == "stages" && e.Message.Contains("cycle: a → b → a", StringComparison.Ordinal));

        var self = Refuse(Staged.Replace("methods: [lora]\n", "methods: [{name: lora, needs: src-a}]\n"));
        Assert.Contains(self.Errors, e => e.Path == "stages[0].methods[0].needs" && e.Message.Contains("its own stage 'src-a'", StringComparison.Ordinal));

        var main = Refuse(Staged.Replace("name: src-a", "name: main"));
        Assert.Contains(main.Errors, e => e.Path == "stages[0].name" && e.Message.Contains("'main' is the name of the spec's own stage", StringComparison.Ordinal));

        var twice = Refuse(Staged.Replace("name: src-b", "name: src-a"));
        Assert.Contains(twice.Errors, e => e.Path == "stages[1].name" && e.Message.Contains("declared twice", StringComparison.Ordinal));

        var noStages = Refuse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [{name: lora, needs: base}]"));
        Assert.Contains(noStages.Errors, e => e.Path == "methods[0].needs" && e.Message.Contains("the spec declares no stages", StringComparison.Ordinal));

        var stageProblem = Refuse(Staged.Replace("grid: {sizes: [20], subsamples: 1, seeds: [0, 1]}", "grid: {sizes: [], subsamples: 1, seeds: [0, 1]}"));
        Assert.Contains(stageProblem.Errors, e => e.Path == "stages[0].grid.sizes");
    }

    [Fact]
    public void Keeping_no_artifacts_is_refused_when_later_stages_need_them()
    {
        var ex = Refuse(Staged + "\nexecution: {artifacts: none}\n");
        Assert.Contains(ex.Errors, e => e.Path == "execution.artifacts" && e.Message.Contains("later stages need", StringComparison.Ordinal));
        var bad = Refuse(TestVocabulary.MinimalSpec + "\nexecution: {artifacts: sometimes}\n");
        Assert.Contains(bad.Errors, e => e.Path == "execution.artifacts" && e.Message.Contains("needed, all or none", StringComparison.Ordinal));
        Assert.Equal(ExecutionSpec.ArtifactsAll, Parse(TestVocabulary.MinimalSpec + "\nexecution: {artifacts: all}\n").Execution.Artifacts);
        Assert.Equal(ExecutionSpec.ArtifactsNeeded, Parse(TestVocabulary.MinimalSpec).Execution.Artifacts);
    }

    [Fact]
    public void Shared_training_makes_the_later_splits_cells_reuse_the_first_splits_trained_model()
    {
        var spec = Parse(TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: synthetic-e2e\n  splits: [seen, unseen, all]\n  share_training: true"));
        Assert.True(spec.Dataset.ShareTraining);
        var dataset = new DatasetIdentity("synthetic-e2e", null, new string('0', 64), new SortedDictionary<string, string>(StringComparer.Ordinal), null);
        var model = new ModelIdentity("tiny", null, 0, new string('1', 64));
        var cells = CellExpander.Expand(spec, dataset, model);
        Assert.Equal(3 * 2 * 2 * 2, cells.Count);
        foreach (var cell in cells)
        {
            var first = cells.Single(c => c.Split == "seen" && (c.Method, c.Size, c.Subsample, c.Seed) == (cell.Method, cell.Size, cell.Subsample, cell.Seed));
            if (cell.Split == "seen")
            {
                Assert.False(cell.ReusesTraining);
                Assert.Empty(cell.Dependencies);
            }
            else
            {
                Assert.True(cell.ReusesTraining);
                Assert.Equal([first.Key], cell.Dependencies);
            }
        }

        var one = Refuse(TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: synthetic-e2e\n  share_training: true"));
        Assert.Contains(one.Errors, e => e.Path == "dataset.share_training" && e.Message.Contains("at least two splits", StringComparison.Ordinal));
    }

    [Fact]
    public void The_cycle_finder_names_the_cycle()
    {
        var edges = new Dictionary<string, List<string>>
        {
            ["main"] = ["x"], ["x"] = ["y"], ["y"] = ["z"], ["z"] = ["x"],
        };
        Assert.Equal(["x", "y", "z", "x"], SpecParser.FindCycle(edges));
        Assert.Null(SpecParser.FindCycle(new Dictionary<string, List<string>> { ["main"] = ["x"], ["x"] = [] }));
    }
}
