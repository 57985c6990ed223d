using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.Core.Tests;

public sealed class CellTests
{
    private static SweepPlan Plan(string yaml) => SweepPlanner.PlanText(yaml, TestVocabulary.Value, Path.GetTempPath());

    [Fact]
    public void Expansion_is_methods_times_sizes_times_subsamples_times_seeds_with_distinct_keys()
    {
        var plan = Plan(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [finetune, lora]"));
        Assert.Equal(2 * 2 * 2 * 2, plan.Cells.Count);
        Assert.Equal(plan.Cells.Count, plan.Cells.Select(c => c.Key).Distinct().Count());
        Assert.All(plan.Cells, c => Assert.Matches("^[0-9a-f]{64}$", c.Key));
        var combos = plan.Cells.Select(c => (c.Method, c.Size, c.Subsample, c.Seed)).ToHashSet();
        Assert.Equal(16, combos.Count);
        Assert.Contains(("lora", 100, 1, 1), combos);
        Assert.Equal(100, plan.Cells.First(c => c.Size == 50).Training.MaxSteps);
    }

    [Fact]
    public void A_methods_training_override_changes_only_its_own_cells()
    {
        var both = Plan(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods: [finetune, lora]"));
        var tuned = Plan(TestVocabulary.MinimalSpec.Replace("methods: [finetune]",
            "methods: [finetune, {name: lora, training: {learning_rate: 0.01}}]"));
        Assert.Equal(both.Cells.Where(c => c.Method == "finetune").Select(c => c.Key), tuned.Cells.Where(c => c.Method == "finetune").Select(c => c.Key));
        Assert.Empty(both.Cells.Where(c => c.Method == "lora").Select(c => c.Key).Intersect(tuned.Cells.Where(c => c.Method == "lora").Select(c => c.Key)));
        Assert.All(tuned.Cells.Where(c => c.Method == "lora"), c => Assert.Equal(0.01, c.Training.LearningRate));
        Assert.All(tuned.Cells.Where(c => c.Method == "finetune"), c => Assert.Equal(5e-5, c.Training.LearningRate));
    }

    [Fact]
    public void Keys_are_stable_across_plans_formatting_and_key_order()
    {
        var a = Plan(TestVocabulary.MinimalSpec);
        // Same content, different YAML layout and key order, plus a description (not part of any cell).
        var b = Plan("""
            # a comment
            grid: {seeds: [0, 1], subsamples: 2, sizes: [50, 100]}
            methods:
              - name: finetune
            model: {preset: tiny}
            dataset: {kind: synthetic-e2e}
            description: reformatted
            name: t
            """);
        Assert.Equal(a.Cells.Select(c => c.Key), b.Cells.Select(c => c.Key));
        Assert.NotEqual(a.SpecHash, b.SpecHash);
    }

    [Fact]
    public void Changing_anything_that_determines_a_result_changes_the_key()
    {
        var baseline = Plan(TestVocabulary.MinimalSpec).Cells[0].Key;
        string[] variants =
        [
            TestVocabulary.MinimalSpec + "\ntraining:\n  learning_rate: 1e-4\n",
            TestVocabulary.MinimalSpec + "\ntraining:\n  batch_size: 5\n",
            TestVocabulary.MinimalSpec + "\ntraining:\n  max_steps: 7\n",
            TestVocabulary.MinimalSpec + "\ndecoding:\n  max_new_tokens: 50\n",
            TestVocabulary.MinimalSpec.Replace("  seeds: [0, 1]", "  seeds: [5, 1]"),
            TestVocabulary.MinimalSpec.Replace("  preset: tiny", "  preset: test"),
            TestVocabulary.MinimalSpec.Replace("  preset: tiny", "  preset: tiny\n  init_seed: 3"),
            TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: synthetic-e2e\n  options: {seed: 3}"),
            TestVocabulary.MinimalSpec + "\n  manifest_seed: 9\n",
            TestVocabulary.MinimalSpec.Replace("methods: [finetune]", "methods:\n  - name: finetune\n    options: {x: 1}"),
        ];
        foreach (var yaml in variants)
        {
            Assert.NotEqual(baseline, Plan(yaml).Cells[0].Key);
        }

        // Run-time policy is not part of a cell's identity.
        Assert.Equal(baseline, Plan(TestVocabulary.MinimalSpec + "\nexecution:\n  max_attempts: 7\n").Cells[0].Key);
    }

    [Fact]
    public void A_cell_round_trips_through_its_canonical_json_with_the_same_key()
    {
        foreach (var cell in Plan(TestVocabulary.MinimalSpec).Cells)
        {
            var back = CellDefinition.FromJson(cell.ToCanonicalJson());
            Assert.Equal(cell.Key, back.Key);
            Assert.Equal(cell.ToCanonicalJson(), back.ToCanonicalJson());
        }
    }

    [Fact]
    public void Key_of_a_fixed_definition_does_not_drift()
    {
        // Guards against accidental changes of the key recipe (which would silently orphan stored results).
        // If the recipe changes on purpose, bump CellDefinition.CurrentCodeVersion and update this value.
        var cell = new CellDefinition(
            "orchestrator-cell/1",
            new DatasetIdentity("e2e", "/data/e2e.csv", new string('a', 64), new SortedDictionary<string, string>(), null),
            "default",
            new ModelIdentity("tiny", null, 0, new string('b', 64)),
            "finetune",
            new SortedDictionary<string, string> { ["r"] = "8" },
            50, 0,
            new ManifestIdentity("rank-sha256/1", "train", 0, false, 0.3),
            1,
            new TrainingSettings(5e-5, 10, 100, 100, 50, 0),
            new DecodingSettings("greedy", 1, 100, 5));
        Assert.Equal(
            """{"code_version":"orchestrator-cell/1","dataset":{"kind":"e2e","path":"/data/e2e.csv","content_hash":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","options":{},"eval_limit":null},"split":"default","model":{"preset":"tiny","path":null,"init_seed":0,"content_hash":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},"method":"finetune","method_options":{"r":"8"},"size":50,"subsample":0,"manifest":{"algorithm":"rank-sha256/1","pool":"train","seed":0,"nested":false,"dev_fraction":0.3},"seed":1,"training":{"learning_rate":5E-05,"batch_size":10,"max_steps":100,"warmup_steps":100,"eval_every":50,"weight_decay":0},"decoding":{"strategy":"greedy","beam_size":1,"max_new_tokens":100,"min_new_tokens":5}}""",
            cell.ToCanonicalJson());
        Assert.Equal(Hashing.ContentHash.Of(cell.ToCanonicalJson()), cell.Key);
    }

    [Fact]
    public void Sizes_that_do_not_fit_the_pool_are_refused_with_the_size_path()
    {
        var yaml = TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: synthetic-e2e\n  options: {mrs: 20}");
        var ex = Assert.Throws<SpecValidationException>(() => Plan(yaml));
        Assert.Contains(ex.Errors, e => e.Path == "grid.sizes[1]" && e.Message.Contains("impossible") && e.Message.Contains("training pool"));
    }

    [Fact]
    public void Dataset_problems_are_reported_with_the_dataset_path()
    {
        var missing = Assert.Throws<SpecValidationException>(() =>
            Plan(TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: e2e\n  path: /nonexistent/devset.csv")));
        Assert.Contains(missing.Errors, e => e.Path == "dataset.path" && e.Message.Contains("/nonexistent/devset.csv"));
        var badOption = Assert.Throws<SpecValidationException>(() =>
            Plan(TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: synthetic-e2e\n  options: {mrs: lots}")));
        Assert.Contains(badOption.Errors, e => e.Path == "dataset.options.mrs");
    }

    [Fact]
    public void Dev_set_is_thirty_percent_of_the_size()
    {
        Assert.Equal(15, CellExpander.DevSize(50));
        Assert.Equal(30, CellExpander.DevSize(100));
        Assert.Equal(150, CellExpander.DevSize(500));
        Assert.Equal(1, CellExpander.DevSize(1));
    }
}
