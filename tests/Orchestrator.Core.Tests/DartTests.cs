using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Dart;

namespace Orchestrator.Core.Tests;

public sealed class DartTests
{
    [Fact]
    public void Triples_are_joined_with_lower_cased_predicates_and_no_leading_bar()
    {
        // PEFT_METHODS.md §3: DART is "s : p.lower() : o" joined by " | ".
        Assert.Equal("Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina",
            DartFormat.Linearise([("Mars Hill College", "JOINED", "1973"), ("Mars Hill College", "LOCATION", "Mars Hill, North Carolina")]));
    }

    [Fact]
    public void The_dart_excerpt_loads_with_every_annotation_as_a_reference()
    {
        // tests/data/dart: the first 40 entries of the DART v1.1.1 dev file, one annotation each. Independent count
        // with Python's json module and the protocol's split rule (sha256 of the linearised input, first 8 hex digits
        // mod 100 < 80 → pool): 32 pool inputs, 8 evaluation inputs.
        var path = TestData.Get("dart/dart-v1.1.1-dev-excerpt.json");
        var entries = DartFormat.Read(path, "dev");
        Assert.Equal(40, entries.Count);
        Assert.Equal(40, entries.Sum(e => e.References.Count));
        Assert.Equal("dev/00000", entries[0].Id);
        Assert.Equal("Mars Hill College : joined : 1973 | Mars Hill College : location : Mars Hill, North Carolina", entries[0].Source);
        Assert.Equal(["A school from Mars Hill, North Carolina, joined in 1973."], entries[0].References);

        var data = DatasetCatalog.Load(DatasetCatalog.Resolve(new DatasetSpec("dart", path, ["default"], null, new Dictionary<string, string>()), "/"));
        Assert.Equal(32, data.TrainPool.Count);
        Assert.Equal(32, data.TrainingExamples.Count);
        Assert.Equal(8, data.Eval.Count);
        Assert.Equal(8, data.Eval.Sum(e => e.References.Count));
    }

    [Theory]
    [InlineData("[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]], \"annotations\": [{\"text\": \"x\"}]},\n {\"tripleset\": [[\"a\", \"b\"]], \"annotations\": [{\"text\": \"y\"}]}\n]",
        "bad.json:3 (entry 1): tripleset[0] must be a list of 3 strings")]
    [InlineData("[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]], \"annotations\": []}\n]", "bad.json:2 (entry 0): no annotations (empty references)")]
    [InlineData("[\n {\"annotations\": [{\"text\": \"x\"}]}\n]", "bad.json:2 (entry 0): missing field 'tripleset'")]
    [InlineData("[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]], \"annotations\": [{\"source\": \"s\"}]}\n]", "bad.json:2 (entry 0) annotations[0]: missing field 'text'")]
    [InlineData("[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]], \"annotations\": [{\"text\": \" \"}]}\n]", "bad.json:2 (entry 0) annotations[0]: field 'text' is empty")]
    [InlineData("[\n {\"tripleset\": [[\"a\", \"b\", \"c\"]],\n  \"annotations\": [{\"text\": \"x\"}\n]", "bad.json:4: broken JSON")]
    [InlineData("{\"tripleset\": []}", "bad.json:1: expected a JSON list of DART entries")]
    public void Malformed_files_are_refused_with_file_line_entry_and_reason(string json, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Write("bad.json", json);
        var ex = Assert.Throws<DatasetException>(() => DartFormat.Read(path, "bad"));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Inputs_repeated_in_the_evaluation_share_one_entry_with_all_their_references()
    {
        var a = new DataEntry("1", "same input", ["r1", "r2"]);
        var b = new DataEntry("2", "same input", ["r2", "r3"]);
        var c = new DataEntry("3", "other input", ["r4"]);
        var grouped = DatasetCatalog.GroupForEvaluation([a, c, b], null);
        Assert.Equal(2, grouped.Count);
        Assert.Equal(["r1", "r2", "r2", "r3"], grouped.Single(e => e.Source == "same input").References);
    }

    [Fact]
    public void A_folder_with_train_and_test_files_trains_on_one_and_evaluates_the_other()
    {
        using var dir = new TempFolder();
        dir.Write("dart-full-train.json", "[{\"tripleset\": [[\"a\", \"P\", \"b\"]], \"annotations\": [{\"text\": \"a p b\"}, {\"text\": \"a has p b\"}]}]");
        dir.Write("dart-full-test.json", "[{\"tripleset\": [[\"c\", \"P\", \"d\"]], \"annotations\": [{\"text\": \"c p d\"}]}]");
        var data = DatasetCatalog.Load(DatasetCatalog.Resolve(new DatasetSpec("dart", dir.Path, ["default"], null, new Dictionary<string, string>()), "/"));
        Assert.Equal(["dart-full-train/00000/r0", "dart-full-train/00000/r1"], data.TrainingExamples.Select(e => e.Id));
        Assert.Equal("c : p : d", Assert.Single(data.Eval).Source);

        dir.Write("dart-other-train.json", "[]");
        var ex = Assert.Throws<DatasetException>(() => DatasetCatalog.Resolve(new DatasetSpec("dart", dir.Path, ["default"], null, new Dictionary<string, string>()), "/"));
        Assert.StartsWith("dataset.path: ", ex.Message);
        Assert.Contains("exactly one *train*.json file, found 2", ex.Message);
    }
}
