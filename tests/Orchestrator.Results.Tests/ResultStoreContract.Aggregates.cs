using Orchestrator.Core.Aggregation;

namespace Orchestrator.Results.Tests;

/// <summary>The database aggregates behind <c>orchestrator results</c>, on every provider.</summary>
public abstract partial class ResultStoreContract
{
    private CellDescriptor PointCell(string key, string method, int size, int subsample, int seed, string split = "default", string dataset = "e2e") =>
        new(K(key), dataset, split, method, size, subsample, seed, $$"""{"cell":"{{key}}"}""");

    private Task Score(string key, double bleu, int attempt = 1, string status = CellStatus.Succeeded) =>
        Store.UpsertResultAsync(Result(key, attempt, status, status == CellStatus.Failed ? "boom" : null,
            metrics: status == CellStatus.Failed ? new() : new() { ["bleu"] = bleu, ["ter"] = 100 - bleu }));

    [Fact]
    public async Task Point_sums_count_sum_squares_min_max_per_point_and_metric_with_expected_and_failed()
    {
        await Store.SaveSweepAsync(Sweep("s", "agg", DateTimeOffset.UtcNow, 7),
        [
            PointCell("p1", "prefix", 50, 0, 0), PointCell("p2", "prefix", 50, 0, 1), PointCell("p3", "prefix", 50, 1, 0),
            PointCell("p4", "prefix", 50, 1, 1), // no result: the point is incomplete
            PointCell("f1", "finetune", 50, 0, 0),
            PointCell("x1", "finetune", 100, 0, 0), // failed
            PointCell("x2", "finetune", 100, 0, 1), // value NaN: stored NULL, not counted
        ]);
        await Score("p1", 10);
        await Score("p2", 12);
        await Score("p3", 14);
        await Score("f1", 20);
        await Score("x1", 0, status: CellStatus.Failed);
        await Store.UpsertResultAsync(Result("x2", 1, metrics: new() { ["bleu"] = double.NaN }));
        await Store.SaveSweepAsync(Sweep("other", "agg2", DateTimeOffset.UtcNow, 1), [PointCell("o1", "prefix", 50, 9, 9)]);
        await Score("o1", 99); // another sweep's cell at the same point: not counted

        var sums = await Store.GetPointSumsAsync(K("s"), "bleu");

        Assert.Equal(3, sums.Count);
        var prefix = sums.Single(p => p.Method == "prefix");
        Assert.Equal(("e2e", "default", 50, "bleu", 4, 0, 3), (prefix.Dataset, prefix.Split, prefix.Size, prefix.Metric, prefix.Expected, prefix.Failed, prefix.N));
        Assert.Equal(36, prefix.Sum, 9);
        Assert.Equal(100 + 144 + 196, prefix.SumOfSquares, 9);
        Assert.Equal((10.0, 14.0), (prefix.Min, prefix.Max));
        var stats = prefix.Statistics;
        Assert.Equal(12, stats.Mean, 9);
        Assert.Equal(2, stats.StdDev, 9);
        Assert.Equal(4.302652729749464 * 2 / Math.Sqrt(3), stats.HalfWidth, 6);

        var finetune50 = sums.Single(p => p.Method == "finetune" && p.Size == 50);
        Assert.Equal((1, 0, 1, 20.0), (finetune50.Expected, finetune50.Failed, finetune50.N, finetune50.Sum));
        var finetune100 = sums.Single(p => p.Method == "finetune" && p.Size == 100);
        Assert.Equal((2, 1, 0), (finetune100.Expected, finetune100.Failed, finetune100.N));
        Assert.True(double.IsNaN(finetune100.Min) && double.IsNaN(finetune100.Max));

        var all = await Store.GetPointSumsAsync(K("s"));
        Assert.Equal(["bleu", "ter"], all.Select(p => p.Metric).Distinct());
        Assert.Equal(6, all.Count);
        Assert.Equal(100 * 3 - 36, all.Single(p => p.Metric == "ter" && p.Method == "prefix").Sum, 9);
        Assert.Empty(await Store.GetPointSumsAsync(K("missing")));
    }

    [Fact]
    public async Task Point_sums_before_any_result_list_every_point_with_the_specs_metrics_and_n_zero()
    {
        await Store.SaveSweepAsync(Sweep("s", "fresh", DateTimeOffset.UtcNow, 2) with { Metrics = ["bleu", "rouge"] },
            [PointCell("a", "lora", 10, 0, 0), PointCell("b", "lora", 20, 0, 0)]);

        var sums = await Store.GetPointSumsAsync(K("s"));

        Assert.Equal(4, sums.Count);
        Assert.All(sums, p => Assert.Equal((1, 0), (p.Expected, p.N)));
        Assert.Equal(["bleu", "rouge"], sums.Select(p => p.Metric).Distinct());
    }

    [Fact]
    public async Task Pairs_by_method_match_split_size_subsample_and_seed_and_skip_unpaired_or_failed_cells()
    {
        await Store.SaveSweepAsync(Sweep("s", "pairs", DateTimeOffset.UtcNow, 7),
        [
            PointCell("a00", "prefix", 50, 0, 0), PointCell("b00", "finetune", 50, 0, 0),
            PointCell("a01", "prefix", 50, 0, 1), PointCell("b01", "finetune", 50, 0, 1),
            PointCell("a10", "prefix", 50, 1, 0), // partner failed
            PointCell("b10", "finetune", 50, 1, 0),
            PointCell("a2", "prefix", 100, 0, 0), // no partner at all
        ]);
        await Score("a00", 30);
        await Score("b00", 25);
        await Score("a01", 28);
        await Score("b01", 27);
        await Score("a10", 40);
        await Score("b10", 0, status: CellStatus.Failed);
        await Score("a2", 50);

        var pairs = await Store.GetPairsAsync(K("s"), "bleu", PairedBy.Method, "prefix", "finetune");

        Assert.Equal([(0, 0, 30.0, 25.0), (0, 1, 28.0, 27.0)], pairs.Select(p => (p.Subsample, p.Seed, p.A, p.B)));
        Assert.All(pairs, p => Assert.Equal(("prefix", 50, "default"), (p.Method, p.Size, p.Split)));
        var diff = Assert.Single(PairedComparison.CompareMethods(pairs)).Difference;
        Assert.Equal((2, 3.0), (diff.N, diff.Mean));
        Assert.Empty(await Store.GetPairsAsync(K("s"), "bleu", PairedBy.Method, "prefix", "lora"));
    }

    [Fact]
    public async Task Pairs_by_split_give_the_seen_minus_unseen_gap()
    {
        await Store.SaveSweepAsync(Sweep("s", "gap", DateTimeOffset.UtcNow, 4),
        [
            PointCell("s0", "prefix", 50, 0, 0, split: "seen"), PointCell("u0", "prefix", 50, 0, 0, split: "unseen"),
            PointCell("s1", "prefix", 50, 0, 1, split: "seen"), PointCell("u1", "prefix", 50, 0, 1, split: "unseen"),
        ]);
        await Score("s0", 60);
        await Score("u0", 40);
        await Score("s1", 58);
        await Score("u1", 44);

        var pairs = await Store.GetPairsAsync(K("s"), "bleu", PairedBy.Split, PairedComparison.Seen, PairedComparison.Unseen);

        var gap = Assert.Single(PairedComparison.GeneralizationGap(pairs));
        Assert.Equal(("prefix", 50), (gap.Method, gap.Size));
        Assert.Equal((2, 17.0), (gap.Difference.N, gap.Difference.Mean));
    }

    [Fact]
    public async Task Results_version_changes_when_a_result_is_written()
    {
        await Store.SaveSweepAsync(Sweep("s", "ver", DateTimeOffset.UtcNow, 2), [PointCell("a", "m", 1, 0, 0), PointCell("b", "m", 1, 0, 1)]);
        var v0 = await Store.GetResultsVersionAsync(K("s"));
        await Score("a", 1, status: CellStatus.Failed);
        var v1 = await Store.GetResultsVersionAsync(K("s"));
        await Score("a", 2, attempt: 2);
        var v2 = await Store.GetResultsVersionAsync(K("s"));

        Assert.Equal((0L, 0L, ""), (v0.Results, v0.AttemptSum, v0.LastFinishedAt));
        Assert.Equal((1L, 1L), (v1.Results, v1.AttemptSum));
        Assert.NotEqual(v1, v2);
        Assert.Equal(v2, await Store.GetResultsVersionAsync(K("s")));

        // A rescore writes no result row, only metric values: the version changes too, and again when they change back.
        Assert.True(await Store.UpdateMetricsAsync(K("a"), 2, new Dictionary<string, double> { ["bleu"] = 7.25 }));
        var v3 = await Store.GetResultsVersionAsync(K("s"));
        Assert.Equal((v2.Results, v2.AttemptSum, v2.LastFinishedAt), (v3.Results, v3.AttemptSum, v3.LastFinishedAt));
        Assert.NotEqual(v2, v3);
        Assert.True(await Store.UpdateMetricsAsync(K("a"), 2, new Dictionary<string, double> { ["bleu"] = 2 }));
        Assert.NotEqual(v3, await Store.GetResultsVersionAsync(K("s")));
    }

    [Fact]
    public async Task Update_metrics_upserts_values_of_the_current_succeeded_attempt_only_and_keeps_the_result_row()
    {
        await Score("c", 10, attempt: 2);
        await Score("f", 0, status: CellStatus.Failed);

        Assert.False(await Store.UpdateMetricsAsync(K("c"), 1, new Dictionary<string, double> { ["bleu"] = 55 })); // stale attempt
        Assert.False(await Store.UpdateMetricsAsync(K("f"), 1, new Dictionary<string, double> { ["bleu"] = 55 })); // failed
        Assert.False(await Store.UpdateMetricsAsync(K("none"), 1, new Dictionary<string, double> { ["bleu"] = 55 }));
        Assert.True(await Store.UpdateMetricsAsync(K("c"), 2, new Dictionary<string, double> { ["bleu"] = 42.5, ["chrf"] = double.NaN }));

        await Store.SaveSweepAsync(Sweep("s", "upd", DateTimeOffset.UtcNow, 1), [PointCell("c", "m", 1, 0, 0)]);
        var (_, result) = Assert.Single(await Store.GetSweepCellsAsync(K("s")));
        Assert.Equal(2, result!.Attempt);
        Assert.Equal(42.5, result.Metrics["bleu"]);
        Assert.Equal(90, result.Metrics["ter"]);
        Assert.True(double.IsNaN(result.Metrics["chrf"]));
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM cell_metrics WHERE cell_key = @k", K("f")));
    }
}
