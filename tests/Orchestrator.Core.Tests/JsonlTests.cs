using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Json;
using Orchestrator.Data.Splits;

namespace Orchestrator.Core.Tests;

public sealed class JsonlTests
{
    private static readonly string[] Topics = ["sport", "world", "uk", "business", "health", "technology", "entertainment-arts", "sport/football", "world-europe"];

    private static string XsumFile(int perTopic)
    {
        var lines = new List<string>();
        var id = 1000;
        foreach (var topic in Topics)
        {
            for (var k = 0; k < perTopic; k++)
            {
                lines.Add(JsonSerializer.Serialize(new { id = (id++).ToString(System.Globalization.CultureInfo.InvariantCulture), document = $"Article {k} about {topic}. It has two sentences.", summary = $"Summary {k} of {topic}.", topic }));
            }
        }

        return string.Join('\n', lines) + "\n";
    }

    private static LoadedDataset Load(string kind, string path, IReadOnlyDictionary<string, string>? options = null, params string[] splits) =>
        DatasetCatalog.Load(DatasetCatalog.Resolve(new DatasetSpec(kind, path, splits.Length == 0 ? ["default"] : splits, null, options ?? new Dictionary<string, string>()), "/"));

    [Fact]
    public void Xsum_reads_documents_summaries_and_topics()
    {
        using var dir = new TempFolder();
        var path = dir.Write("xsum.jsonl", "{\"id\": 29750031, \"document\": \"The full article.\\nSecond line.\", \"summary\": \"A one-line summary.\", \"topic\": \"UK\"}\n\n");
        var entry = Assert.Single(JsonlFormat.ReadXsum(path));
        Assert.Equal("29750031", entry.Id); // a numeric id is accepted as its text
        Assert.Equal("The full article.\nSecond line.", entry.Source);
        Assert.Equal(["A one-line summary."], entry.References);
        Assert.Equal("UK", entry.Category);
    }

    [Fact]
    public void News_to_sports_trains_on_news_and_evaluates_every_sports_article()
    {
        using var dir = new TempFolder();
        var path = dir.Write("xsum.jsonl", XsumFile(20));
        var all = JsonlFormat.ReadXsum(path);
        var data = Load("xsum", path, null, "news-to-sports", "within-news");
        var view = data.ForSplit("news-to-sports");

        var sportsIds = all.Where(e => e.Category!.StartsWith("sport", StringComparison.Ordinal)).Select(e => e.Id).Order().ToList();
        Assert.Equal(40, sportsIds.Count);
        Assert.Equal(sportsIds, view.Eval.Select(e => e.Id).Order()); // sports is never trained on, so all of it is evaluated
        Assert.All(view.TrainPool, e => Assert.False(e.Category!.StartsWith("sport", StringComparison.Ordinal)));
        Assert.InRange(view.TrainPool.Count, 100, 140); // ~80% of the 140 news articles
        Assert.All(view.TrainPool, e => Assert.Contains(e, data.TrainPool)); // a subset of the default pool
    }

    [Fact]
    public void Within_news_trains_on_world_uk_and_business_and_evaluates_the_other_news_topics()
    {
        using var dir = new TempFolder();
        var path = dir.Write("xsum.jsonl", XsumFile(20));
        var view = Load("xsum", path, null, "within-news").ForSplit("within-news");
        Assert.All(view.TrainPool, e => Assert.Contains(EvaluationSplits.TopicFamily(e.Category!), new[] { "world", "uk", "business" }));
        Assert.Equal(["entertainment-arts", "health", "technology"], view.Eval.Select(e => e.Category!).Distinct().Order());
        Assert.Equal(60, view.Eval.Count);
        Assert.InRange(view.TrainPool.Count, 60, 95); // ~80% of world, world-europe, uk, business (80 articles)
    }

    [Theory]
    [InlineData("{\"id\": \"1\", \"document\": \"d\", \"summary\": \"s\", \"topic\": \"uk\"}\n{\"id\": \"2\", \"document\": \"d\", \"topic\": \"uk\"}\n", "x.jsonl:2: missing field 'summary'")]
    [InlineData("{\"id\": \"1\", \"document\": \"d\", \"summary\": \"s\", \"topic\": \"uk\"}\n\n{\"id\": \"1\", \"document\": \"e\", \"summary\": \"t\", \"topic\": \"uk\"}\n", "x.jsonl:3: duplicate id '1' (first at line 1)")]
    [InlineData("{\"id\": \"1\", \"document\": \"d\", \"summary\": \"s\", \"topic\": \"uk\"\n", "x.jsonl:1: broken JSON")]
    [InlineData("{\"id\": \"1\", \"document\": \"d\", \"summary\": \"  \", \"topic\": \"uk\"}\n", "x.jsonl:1: field 'summary' is empty")]
    [InlineData("{\"id\": \"1\", \"document\": [\"d\"], \"summary\": \"s\", \"topic\": \"uk\"}\n", "x.jsonl:1: field 'document' must be a string, got a list")]
    [InlineData("[1, 2]\n", "x.jsonl:1: expected one JSON object per line, got a list")]
    [InlineData("\n\n", "x.jsonl: no entries (the file is empty)")]
    public void Malformed_xsum_lines_are_refused_with_file_line_and_reason(string text, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Write("x.jsonl", text);
        Assert.Contains(expected, Assert.Throws<DatasetException>(() => JsonlFormat.ReadXsum(path)).Message);
    }

    [Fact]
    public void Broken_json_is_reported_at_our_line_and_its_column_without_the_readers_own_line_number()
    {
        using var dir = new TempFolder();
        var jsonl = dir.Write("x.jsonl", "{\"id\": \"1\", \"document\": \"d\", \"summary\": \"s\", \"topic\": \"uk\"}\n\n{\"id\": \"2\", \"document\": x}\n");
        var message = Assert.Throws<DatasetException>(() => JsonlFormat.ReadXsum(jsonl)).Message;
        Assert.True(message.StartsWith($"{jsonl}:3: broken JSON: 'x' is an invalid start of a value. (column 25)", StringComparison.Ordinal), message);
        Assert.DoesNotContain("LineNumber", message);

        var dart = dir.Write("d.json", "[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]],\n  \"annotations\": [{\"text\": x}]}\n]");
        var dartMessage = Assert.Throws<DatasetException>(() => Orchestrator.Data.Dart.DartFormat.Read(dart, "d")).Message;
        Assert.StartsWith($"{dart}:3: broken JSON: 'x' is an invalid start of a value.", dartMessage);
        Assert.DoesNotContain("LineNumber", dartMessage);
    }

    [Fact]
    public void Wrong_encoding_is_refused_with_its_line()
    {
        using var dir = new TempFolder();
        var path = dir.WriteBytes("x.jsonl", [.. "{\"id\": \"1\", \"source\": \"a\", \"references\": [\"b\"]}\n{\"id\": \"2\", \"source\": \"Caf"u8, 0xE9, .. "\", \"references\": [\"b\"]}\n"u8]);
        var ex = Assert.Throws<DatasetException>(() => JsonlFormat.ReadGeneric(path));
        Assert.Contains("x.jsonl:2:27: wrong encoding", ex.Message);
    }

    [Theory]
    [InlineData("{\"id\": \"1\", \"source\": \"a\", \"references\": []}\n", "x.jsonl:1: 'references' is an empty list (no references)")]
    [InlineData("{\"id\": \"1\", \"source\": \"a\", \"references\": [\"ok\", \"\"]}\n", "x.jsonl:1: references[1] is empty (empty reference)")]
    [InlineData("{\"id\": \"1\", \"source\": \"a\", \"references\": [\"ok\", 3]}\n", "x.jsonl:1: references[1] must be a string, got a number")]
    [InlineData("{\"id\": \"1\", \"references\": [\"ok\"]}\n", "x.jsonl:1: missing field 'source'")]
    [InlineData("{\"source\": \"a\", \"references\": [\"ok\"]}\n", "x.jsonl:1: missing field 'id'")]
    [InlineData("{\"id\": \"1\", \"source\": \"a\", \"references\": \"ok\"}\n", "x.jsonl:1: field 'references' must be a list, got a string")]
    [InlineData("{\"id\": \"1\", \"source\": \"a\", \"references\": [\"ok\"], \"topic\": 7}\n", "x.jsonl:1: field 'topic' must be a string, got a number")]
    public void Malformed_generic_lines_are_refused_with_file_line_and_reason(string text, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Write("x.jsonl", text);
        Assert.Contains(expected, Assert.Throws<DatasetException>(() => JsonlFormat.ReadGeneric(path)).Message);
    }

    [Fact]
    public void Generic_jsonl_holds_out_the_named_topics_from_training()
    {
        using var dir = new TempFolder();
        var entries = Enumerable.Range(0, 90).Select(i => new DataEntry($"e{i}", $"input number {i}", [$"output {i}", $"another output {i}"], (i % 3) switch { 0 => "Food", 1 => "Travel", _ => "Sports" }))
            .Append(new DataEntry("notopic", "an input without a topic", ["x"]))
            .ToList();
        var path = dir.Write("d.jsonl", JsonlFormat.ToGenericJsonl(entries));
        var options = new Dictionary<string, string> { ["holdout_topics"] = "sports, travel" };
        var data = Load("jsonl", path, options, "seen", "unseen", "all");

        Assert.Equal(["default", "seen", "unseen", "all"], data.SplitNames);
        Assert.All(data.TrainPool, e => Assert.True(e.Category is null or "Food", e.Id)); // held-out topics never trained on
        Assert.Equal(60, data.EvalFor("unseen").Count); // every Travel and Sports input
        Assert.All(data.EvalFor("seen"), e => Assert.True(e.Category is null or "Food"));
        Assert.Equal(data.EvalFor("seen").Count + 60, data.EvalFor("all").Count);
        Assert.Equal(2, data.TrainingExamples.Count(x => x.EntryId == data.TrainPool[0].Id)); // one example per reference
    }

    [Fact]
    public void Topic_splits_of_generic_jsonl_need_the_holdout_option_and_options_are_checked()
    {
        using var dir = new TempFolder();
        var path = dir.Write("d.jsonl", "{\"id\": \"1\", \"source\": \"a\", \"references\": [\"b\"], \"topic\": \"t\"}\n");
        var noOption = Assert.Throws<DatasetException>(() =>
            DatasetCatalog.Resolve(new DatasetSpec("jsonl", path, ["unseen"], null, new Dictionary<string, string>()), "/"));
        Assert.Equal("dataset.splits[0]: unknown split 'unseen' for jsonl (known: default) (topic splits need dataset.options.holdout_topics)", noOption.Message);

        var badOption = Assert.Throws<DatasetException>(() =>
            DatasetCatalog.Resolve(new DatasetSpec("jsonl", path, ["default"], null, new Dictionary<string, string> { ["hold_out"] = "t" }), "/"));
        Assert.StartsWith("dataset.options.hold_out: unknown option for jsonl", badOption.Message);

        var xsumOption = Assert.Throws<DatasetException>(() =>
            DatasetCatalog.Resolve(new DatasetSpec("xsum", path, ["default"], null, new Dictionary<string, string> { ["x"] = "1" }), "/"));
        Assert.StartsWith("dataset.options: the xsum reader takes no options", xsumOption.Message);
    }

    [Fact]
    public void A_sweep_over_xsum_splits_checks_each_split_pool_and_reports_the_split()
    {
        using var dir = new TempFolder();
        dir.Write("xsum.jsonl", XsumFile(20));
        var vocabulary = TestVocabulary.Value with { DatasetKinds = DatasetCatalog.Kinds };
        var yaml = TestVocabulary.MinimalSpec
            .Replace("  kind: synthetic-e2e", "  kind: xsum\n  path: xsum.jsonl\n  splits: [news-to-sports, within-news]")
            .Replace("sizes: [50, 100]", "sizes: [10, 60]");
        var ex = Assert.Throws<SpecValidationException>(() => SweepPlanner.PlanText(yaml, vocabulary, dir.Path));
        // 60 + 18 dev examples fit the news-to-sports pool (~80% of 140 news articles) but not the within-news pool
        // (~80% of the 80 world, world-europe, uk and business articles).
        var error = Assert.Single(ex.Errors);
        Assert.Equal("grid.sizes[1]", error.Path);
        Assert.Contains("the training pool of split 'within-news' has", error.Message);
    }
}
