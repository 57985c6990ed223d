using Orchestrator.Core.Aggregation;
using Xunit;

namespace Orchestrator.Core.Tests;

/// <summary>
/// The demo's reading paragraph: its numbers are the table's (means, differences of means) and the paired intervals it is
/// given, its verdicts follow the intervals, and it says what the table does not show.
/// </summary>
public sealed class StudyReadingTests
{
    private static PointSummary Point(string method, int size, params double[] values) =>
        new("synthetic-e2e", "default", method, size, "bleu", values.Length, 0, MetricStatistics.Of(values));

    private static PairedSummary Pair(int size, params double[] differences) =>
        new("synthetic-e2e", "default", null, size, MetricStatistics.Of(differences));

    private static readonly ReadingContext Context = new(4, 40, "a 2-layer GPT-2 shape", SettingsSelected: false, "See docs/study.md.");

    [Fact]
    public void Leader_gaps_and_verdicts_follow_the_means_and_the_paired_intervals()
    {
        var points = new[]
        {
            Point("finetune", 50, 20, 22, 24, 26), // mean 23
            Point("lora", 50, 19, 21, 23, 25),     // mean 22
            Point("prefix", 50, 10, 11, 12, 13),   // mean 11.5
            Point("finetune", 100, 24, 25, 26, 27),
            Point("lora", 100, 30, 31, 32, 33),
            Point("prefix", 100, 20, 22, 24, 26),
        };
        var comparisons = new List<(string, string, IReadOnlyList<PairedSummary>)>
        {
            // finetune − lora at 50: differences 1, -3, 5, 1 → mean 1, CI contains 0.
            ("finetune", "lora", [Pair(50, 1, -3, 5, 1), Pair(100, -6, -6, -6.5, -5.5)]),
            // finetune − prefix at 50: 10, 11, 12, 13 → CI excludes 0.
            ("finetune", "prefix", [Pair(50, 10, 11, 12, 13), Pair(100, 4, 3, 2, 1)]),
            // given as prefix − lora: the reading must negate it for lora − prefix at 100.
            ("prefix", "lora", [Pair(50, -9, -10, -11, -12), Pair(100, -10, -9, -8, -7)]),
        };

        string text = StudyReading.Describe("bleu", points, comparisons, Context);

        Assert.Contains("With 50 training examples finetune leads at 23.0 bleu", text);
        var lora50 = MetricStatistics.Of([1, -3, 5, 1]);
        Assert.Contains($"lora is 1.0 lower (paired 95% CI {lora50.CiLow:F1} to {lora50.CiHigh:F1} over 4 pairs: not distinguishable from it)", text);
        var prefix50 = MetricStatistics.Of([10, 11, 12, 13]);
        Assert.Contains($"prefix is 11.5 lower (paired 95% CI {prefix50.CiLow:F1} to {prefix50.CiHigh:F1} over 4 pairs: an established gap)", text);

        Assert.Contains("With 100 training examples lora leads at 31.5 bleu", text);
        var loraMinusPrefix = MetricStatistics.Of([10, 9, 8, 7]); // − (prefix − lora)
        Assert.Contains($"prefix is 8.5 lower (paired 95% CI {loraMinusPrefix.CiLow:F1} to {loraMinusPrefix.CiHigh:F1} over 4 pairs: an established gap)", text);
        Assert.Contains("From 50 to 100 examples: finetune +2.5, lora +9.5 and prefix +11.5.", text);
        Assert.Contains("each point averages 4 models scored on 40 inputs", text);
        Assert.Contains("set by hand", text);
        Assert.EndsWith("See docs/study.md.", text);
    }

    [Fact]
    public void A_gap_without_a_paired_interval_is_said_to_have_none_and_selected_settings_are_named()
    {
        var points = new[] { Point("finetune", 50, 10, 12), Point("lora", 50, 4, 6) };
        string text = StudyReading.Describe("rougeL", points, [], Context with { SettingsSelected = true, EvaluationInputs = null, Closing = null });

        Assert.Contains("With 50 training examples finetune leads at 11.0 rougeL; lora is 6.0 lower (no paired interval).", text);
        Assert.DoesNotContain("From ", text);
        Assert.Contains("each point averages 4 models, so", text);
        Assert.Contains("chosen on dev data by the sweep", text);
    }

    [Fact]
    public void No_values_reads_as_nothing_to_read()
    {
        var empty = new[] { new PointSummary("d", "s", "lora", 50, "bleu", 4, 4, MetricStatistics.Empty) };
        Assert.Equal("No bleu values yet: nothing to read.", StudyReading.Describe("bleu", empty, [], Context));
    }
}
