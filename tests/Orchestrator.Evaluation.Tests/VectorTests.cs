using System.Text.Json;
using Orchestrator.TestKit;

namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// Compares with the numbers the reference implementations produced on the e2e_dev200 vectors
/// (<c>tests/data/vectors/e2e_dev200/expected.json</c>).
/// </summary>
public sealed class VectorTests
{
    private const double Tolerance = 1e-9;

    private static E2eDev200Vectors V => E2eDev200Vectors.Value;

    [Fact]
    public void Vectors_are_read_as_described()
    {
        var hist = V.Expected.GetProperty("refs_per_segment_hist");
        var actual = V.Groups.GroupBy(g => g.Count).ToDictionary(g => g.Key, g => g.Count());
        var expected = hist.EnumerateObject().ToDictionary(p => int.Parse(p.Name, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.GetInt32());
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
        Assert.Equal(V.Expected.GetProperty("total_refs").GetInt32(), V.Groups.Sum(g => g.Count));

        // Padding is only at the end of each segment's references (streams are filled in order).
        foreach (var i in Enumerable.Range(0, V.Hypotheses.Count))
        {
            var column = V.Streams.Select(s => s[i]).ToList();
            Assert.All(column.Skip(V.Groups[i].Count), r => Assert.Equal(string.Empty, r));
        }
    }

    [Fact]
    public void SacreBleu_drops_empty_references_and_matches_empty_ref_drop()
    {
        var score = SacreBleu.Corpus(V.Hypotheses, V.StreamsView);
        AssertBleu(V.Expected.GetProperty("sacrebleu").GetProperty("empty_ref_drop"), score);
        Assert.Equal("nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", score.Signature);
    }

    [Fact]
    public void SacreBleu_keeping_empty_references_matches_empty_ref_keep()
    {
        var options = SacreBleuOptions.Default with { DropEmptyReferences = false };
        var score = SacreBleu.Corpus(V.Hypotheses, V.StreamsView, options);
        AssertBleu(V.Expected.GetProperty("sacrebleu").GetProperty("empty_ref_keep"), score);
    }

    [Fact]
    public void SacreBleu_from_groups_equals_streams_with_padding_dropped()
    {
        var fromGroups = SacreBleu.CorpusFromGroups(V.Hypotheses, V.GroupsView);
        AssertBleu(V.Expected.GetProperty("sacrebleu").GetProperty("empty_ref_drop"), fromGroups);
    }

    [Fact]
    public void SacreBleu_matches_the_cli_on_the_padded_files()
    {
        var cli = V.Expected.GetProperty("sacrebleu_cli_on_padded_files");
        var score = SacreBleu.Corpus(V.Hypotheses, V.StreamsView, SacreBleuOptions.Default with { DropEmptyReferences = false });

        // The CLI prints the score rounded to 6 decimals.
        Assert.Equal(cli.GetProperty("score").GetDouble(), Math.Round(score.Score, 6), Tolerance);
        Assert.Equal(cli.GetProperty("signature").GetString(), score.Signature);
        var verbose = score.Format();
        Assert.Equal(cli.GetProperty("verbose_score").GetString(), verbose[(verbose.IndexOf(' ', "BLEU = ".Length) + 1)..]);
    }

    [Fact]
    public void E2e_challenge_bleu_matches_pymteval()
    {
        var expected = V.Expected.GetProperty("e2e_metrics_pymteval_bleu").GetProperty("score_0_to_1").GetDouble();
        Assert.Equal(expected, E2eChallengeBleu.Corpus(V.Hypotheses, V.GroupsView), Tolerance);
    }

    [Fact]
    public void E2e_challenge_bleu_on_the_e2e_metrics_reference_file_matches_pymteval()
    {
        // measure_scores.py's multi-reference format: one reference per line, segments separated by blank lines.
        var groups = new List<List<string>> { new() };
        foreach (var line in TestData.ReadLines(V.Directory, "refs_e2e_metrics_format.txt").Select(l => l.Trim()))
        {
            if (line.Length == 0)
            {
                groups.Add([]);
            }
            else
            {
                groups[^1].Add(line);
            }
        }

        if (groups[^1].Count == 0)
        {
            groups.RemoveAt(groups.Count - 1);
        }

        Assert.Equal(V.Groups, groups);
        var expected = V.Expected.GetProperty("e2e_metrics_pymteval_bleu").GetProperty("score_0_to_1").GetDouble();
        Assert.Equal(expected, E2eChallengeBleu.Corpus(V.Hypotheses, groups), Tolerance);
    }

    [Theory]
    [InlineData("rouge_max_over_refs", "nostem", false)]
    [InlineData("rouge_max_over_refs", "stem", true)]
    public void Rouge_best_reference_means_match_rouge_score(string section, string variant, bool useStemmer)
    {
        var scores = Rouge.CorpusMean(V.Hypotheses, V.GroupsView, useStemmer);
        AssertRouge(V.Expected.GetProperty(section).GetProperty(variant), scores);
    }

    [Theory]
    [InlineData("rouge_ref0_only", "nostem", false)]
    [InlineData("rouge_ref0_only", "stem", true)]
    public void Rouge_first_reference_means_match_rouge_score(string section, string variant, bool useStemmer)
    {
        var firstOnly = V.Groups.Select(g => (IReadOnlyList<string>)[g[0]]).ToList();
        var scores = Rouge.CorpusMean(V.Hypotheses, firstOnly, useStemmer);
        AssertRouge(V.Expected.GetProperty(section).GetProperty(variant), scores);
    }

    private static void AssertBleu(JsonElement expected, BleuScore actual)
    {
        Assert.Equal(expected.GetProperty("score").GetDouble(), actual.Score, Tolerance);
        Assert.Equal(Ints(expected.GetProperty("counts")), actual.Counts);
        Assert.Equal(Ints(expected.GetProperty("totals")), actual.Totals);
        var precisions = expected.GetProperty("precisions").EnumerateArray().Select(p => p.GetDouble()).ToList();
        Assert.Equal(precisions.Count, actual.Precisions.Count);
        for (var i = 0; i < precisions.Count; i++)
        {
            Assert.Equal(precisions[i], actual.Precisions[i], Tolerance);
        }

        Assert.Equal(expected.GetProperty("bp").GetDouble(), actual.BrevityPenalty, Tolerance);
        Assert.Equal(expected.GetProperty("sys_len").GetInt32(), actual.SysLen);
        Assert.Equal(expected.GetProperty("ref_len").GetInt32(), actual.RefLen);
        Assert.Equal(expected.GetProperty("formatted").GetString(), actual.Format());
        Assert.Equal(expected.GetProperty("formatted").GetString(), actual.ToString());
        Assert.Equal(expected.GetProperty("signature").GetString(), actual.Signature);
    }

    private static List<int> Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToList();

    private static void AssertRouge(JsonElement expected, RougeScores actual)
    {
        var mean = expected.GetProperty("mean");
        var x100 = expected.GetProperty("mean_f_x100");
        foreach (var metric in RougeScores.MetricNames)
        {
            var e = mean.GetProperty(metric);
            var a = actual[metric];
            Assert.Equal(e.GetProperty("precision").GetDouble(), a.Precision, Tolerance);
            Assert.Equal(e.GetProperty("recall").GetDouble(), a.Recall, Tolerance);
            Assert.Equal(e.GetProperty("fmeasure").GetDouble(), a.FMeasure, Tolerance);
            Assert.Equal(x100.GetProperty(metric).GetDouble(), a.FMeasure * 100, Tolerance);
        }
    }
}
