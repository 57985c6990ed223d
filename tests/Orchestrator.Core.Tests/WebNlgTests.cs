using System.Text;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.WebNlg;

namespace Orchestrator.Core.Tests;

public sealed class WebNlgTests
{
    private const string Fixture = """
        <?xml version="1.0" encoding="UTF-8"?>
        <benchmark>
          <entries>
            <entry category="Airport" eid="Id1" size="2">
              <originaltripleset><otriple>Aarhus_Airport | cityServed | "Aarhus, Denmark"@en</otriple></originaltripleset>
              <modifiedtripleset>
                <mtriple>Aarhus_Airport | cityServed | "Aarhus, Denmark"</mtriple>
                <mtriple>Aarhus_Airport | elevationAboveTheSeaLevel_(in_metres) | 25.0</mtriple>
              </modifiedtripleset>
              <lex comment="good" lid="Id1">Aarhus Airport serves Aarhus, Denmark and is 25 metres above sea level.</lex>
              <lex comment="bad" lid="Id2">Aarhus airport.</lex>
              <lex comment="good" lid="Id3">The airport of Aarhus,
                 Denmark, lies 25 metres above the sea.</lex>
            </entry>
            <entry category="Artist" eid="Id2" size="1">
              <modifiedtripleset><mtriple>Aaron_Turner | genre | Post-metal</mtriple></modifiedtripleset>
              <lex comment="good" lid="Id1">Aaron Turner plays post-metal.</lex>
              <lex comment="bad" lid="Id2">Aaron Turner, post metal.</lex>
            </entry>
          </entries>
        </benchmark>
        """;

    [Fact]
    public void Triples_are_linearised_with_a_leading_bar_as_in_the_protocol()
    {
        // PROTOCOL.md / PEFT_METHODS.md §3: ''.join(' | ' + f'{s} : {p} : {o}' for each triple).
        Assert.Equal(" | A : b : C | A : d : \"E F\"",
            WebNlgFormat.Linearise([new RdfTriple("A", "b", "C"), new RdfTriple("A", "d", "\"E F\"")]));
    }

    [Fact]
    public void A_written_file_keeps_categories_triples_and_lexicalisations_with_their_comment()
    {
        using var dir = new TempFolder();
        var path = dir.Write("one.xml", Fixture);
        var entries = WebNlgFormat.ReadFile(path, "one");
        Assert.Equal(2, entries.Count);
        var airport = entries[0];
        Assert.Equal("one/Id1", airport.Id);
        Assert.Equal("Airport", airport.Category);
        Assert.Equal(" | Aarhus_Airport : cityServed : \"Aarhus, Denmark\" | Aarhus_Airport : elevationAboveTheSeaLevel_(in_metres) : 25.0", airport.Source);
        Assert.Equal(["good", "bad", "good"], airport.Lexicalisations.Select(l => l.Comment));
        Assert.Equal("The airport of Aarhus, Denmark, lies 25 metres above the sea.", airport.Lexicalisations[2].Text);

        // Training keeps comment="good"; evaluation uses every lexicalisation.
        Assert.Equal(2, WebNlgFormat.TrainingEntry(airport)!.References.Count);
        Assert.Equal(3, WebNlgFormat.EvaluationEntry(airport).References.Count);
    }

    [Fact]
    public void A_folder_trains_on_train_and_evaluates_the_test_file_by_seen_and_unseen_category()
    {
        using var dir = new TempFolder();
        dir.Write("train/1triples/a.xml", Wrap(
            Entry("Airport", "Id1", "X_Airport | city | Y", ("good", "X serves Y."), ("bad", "X Y.")) +
            Entry("Food", "Id2", "Pie | country | UK", ("good", "Pie is from the UK."), ("good", "Pie comes from the UK."))));
        dir.Write("test/testdata_with_lex.xml", Wrap(
            Entry("Airport", "Id1", "Z_Airport | city | W", ("good", "Z serves W."), ("bad", "Z W.")) +
            Entry("Artist", "Id2", "Bob | genre | Jazz", ("good", "Bob plays jazz.")) +
            Entry("Politician", "Id3", "Ann | party | Greens", ("good", "Ann is a Green."), ("good", "Ann belongs to the Greens."))));
        var identity = DatasetCatalog.Resolve(new DatasetSpec("webnlg", dir.Path, ["seen", "unseen", "all"], null, new Dictionary<string, string>()), "/");
        var data = DatasetCatalog.Load(identity);

        Assert.Equal(["default", "seen", "unseen", "all"], data.SplitNames);
        Assert.Equal(2, data.TrainPool.Count);
        Assert.Equal(3, data.TrainingExamples.Count); // the "bad" training lexicalisation is not used
        Assert.Equal(["Airport"], data.EvalFor("seen").Select(e => e.Category));
        Assert.Equal(2, data.EvalFor("seen")[0].References.Count); // every test lexicalisation is a reference
        Assert.Equal(["Artist", "Politician"], data.EvalFor("unseen").Select(e => e.Category).Order());
        Assert.Equal(3, data.EvalFor("all").Count);
        Assert.Equal(3, data.Eval.Count); // default = all
        Assert.Equal(2, data.ForSplit("unseen").TrainPool.Count); // every WebNLG split trains on the same pool
    }

    [Fact]
    public void The_webnlg_2017_excerpt_reads_with_the_counts_of_an_independent_reader()
    {
        // tests/data/webnlg: the first 20, 30 and 15 entries of three training files, 10 of a dev file and 3 test
        // entries per category (tests/data/make-excerpts.py). Counts from reading the XML independently (Python
        // ElementTree): 65 training entries, one of which (2triples University Id26) has only comment="toFix"
        // lexicalisations, leaving 64 with 166 "good" ones; 45 test inputs = 30 seen (81 references) + 15 unseen (35).
        var identity = DatasetCatalog.Resolve(
            new DatasetSpec("webnlg", TestData.Get("webnlg"), ["seen", "unseen", "all"], null, new Dictionary<string, string>()), "/");
        var data = DatasetCatalog.Load(identity);
        Assert.Equal(64, data.TrainPool.Count);
        Assert.Equal(166, data.TrainingExamples.Count);
        Assert.Equal(30, data.EvalFor("seen").Count);
        Assert.Equal(81, data.EvalFor("seen").Sum(e => e.References.Count));
        Assert.Equal(15, data.EvalFor("unseen").Count);
        Assert.Equal(35, data.EvalFor("unseen").Sum(e => e.References.Count));
        Assert.Equal(45, data.EvalFor("all").Count);
        Assert.All(data.EvalFor("unseen"), e => Assert.Contains(e.Category!, WebNlgFormat.UnseenCategories));
        Assert.All(data.TrainPool, e => Assert.Contains(e.Category!, WebNlgFormat.SeenCategories));

        // The first test entry (eid Id1, Airport): one triple, two lexicalisations.
        var first = data.EvalFor("seen").Single(e => e.Id == "test/testdata_with_lex/Id1");
        Assert.Equal(" | Abilene_Regional_Airport : cityServed : Abilene,_Texas", first.Source);
        Assert.Equal(["Abilene, Texas is served by the Abilene regional airport.", "Abilene Regional Airport serves the city of Abilene in Texas."], first.References);
    }

    [Fact]
    public void Stats_count_parts_categories_and_splits_of_the_excerpt()
    {
        var identity = DatasetCatalog.Resolve(new DatasetSpec("webnlg", TestData.Get("webnlg"), ["default"], null, new Dictionary<string, string>()), "/");
        var stats = DatasetStatistics.Compute(identity);
        Assert.Equal(64, stats.Parts.Single(p => p.Part == "train").Entries);
        Assert.Equal(166, stats.Parts.Single(p => p.Part == "train").References);
        Assert.Equal(10, stats.Parts.Single(p => p.Part == "dev").Entries); // read for statistics only
        Assert.Equal(21, stats.Parts.Single(p => p.Part == "dev").References);
        Assert.Contains("train/2triples/2triples_University_train_challenge: 1 entry has no comment=\"good\" lexicalisation and is not used", stats.Notes);
        var artist = stats.Categories.Single(c => c.Part == "test" && c.Category == "Artist");
        Assert.Equal(("unseen", 3), (artist.Group, artist.Entries));
        var university = stats.Categories.Single(c => c.Part == "train" && c.Category == "University");
        Assert.Equal(("seen", 29), (university.Group, university.Entries));
        Assert.Equal(15, stats.Splits.Single(s => s.Split == "unseen").EvalEntries);
        Assert.DoesNotContain(stats.Notes, n => n.Contains("test input(s) also occur", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("<benchmark><entries><entry category=\"A\" eid=\"Id1\">\n<modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset>\n<lex comment=\"good\">x</lex>\n</entries></benchmark>",
        "bad.xml:4:3: broken XML")]
    [InlineData("<benchmark><entries>\n<entry eid=\"Id1\"><modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset><lex comment=\"good\">x</lex></entry></entries></benchmark>",
        "bad.xml:2: entry Id1 has no 'category' attribute")]
    [InlineData("<benchmark><entries>\n<entry category=\"A\" eid=\"Id1\"><modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset>\n<lex comment=\"good\">  </lex></entry></entries></benchmark>",
        "bad.xml:3: entry Id1 has an empty <lex> (empty reference)")]
    [InlineData("<benchmark><entries>\n<entry category=\"A\" eid=\"Id1\"><modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset></entry></entries></benchmark>",
        "bad.xml:2: entry Id1 has no <lex> (no references)")]
    [InlineData("<benchmark><entries>\n<entry category=\"A\" eid=\"Id1\"><modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset><lex>x</lex></entry>\n<entry category=\"A\" eid=\"Id1\"><modifiedtripleset><mtriple>a | b | d</mtriple></modifiedtripleset><lex>y</lex></entry></entries></benchmark>",
        "bad.xml:3: duplicate entry id eid=\"Id1\" (first at line 2)")]
    [InlineData("<benchmark><entries>\n<entry category=\"A\" eid=\"Id1\"><modifiedtripleset>\n<mtriple>a | b</mtriple></modifiedtripleset><lex>x</lex></entry></entries></benchmark>",
        "bad.xml:3: entry Id1: a triple must be 'subject | property | object', got 'a | b'")]
    [InlineData("<benchmark><entries>\n<entry category=\"A\" eid=\"Id1\" size=\"2\"><modifiedtripleset><mtriple>a | b | c</mtriple></modifiedtripleset><lex>x</lex></entry></entries></benchmark>",
        "bad.xml:2: entry Id1 says size=\"2\" but has 1 triple(s)")]
    [InlineData("<entries/>", "bad.xml:1: expected a <benchmark> root element, found <entries>")]
    public void Malformed_files_are_refused_with_file_line_and_reason(string xml, string expected)
    {
        using var dir = new TempFolder();
        var path = dir.Write("bad.xml", xml);
        var ex = Assert.Throws<DatasetException>(() => WebNlgFormat.ReadFile(path, "bad"));
        Assert.Contains(expected, ex.Message);
        Assert.StartsWith(path, ex.Message);
    }

    [Fact]
    public void Wrong_encodings_are_refused_with_the_line_of_the_first_bad_byte()
    {
        using var dir = new TempFolder();
        var latin1 = dir.WriteBytes("latin1.xml", [.. "<benchmark>\n<entries>\n<entry category=\"Caf"u8, 0xE9, .. "\"/></entries></benchmark>"u8]);
        var ex = Assert.Throws<DatasetException>(() => WebNlgFormat.ReadFile(latin1, "x"));
        Assert.Contains("latin1.xml:3:21: wrong encoding: byte 0xE9", ex.Message);

        var utf16 = dir.WriteBytes("utf16.xml", [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes("<benchmark/>")]);
        Assert.Contains("UTF-16", Assert.Throws<DatasetException>(() => WebNlgFormat.ReadFile(utf16, "x")).Message);
    }

    [Fact]
    public void A_spec_with_an_unknown_split_names_the_split_field()
    {
        using var dir = new TempFolder();
        dir.Write("one.xml", Fixture);
        var vocabulary = TestVocabulary.Value with { DatasetKinds = DatasetCatalog.Kinds };
        var yaml = TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", "  kind: webnlg\n  path: one.xml\n  splits: [seen, unsen]");
        var ex = Assert.Throws<SpecValidationException>(() => SweepPlanner.PlanText(yaml, vocabulary, dir.Path));
        var error = Assert.Single(ex.Errors);
        Assert.Equal("dataset.splits[1]", error.Path);
        Assert.Contains("unknown split 'unsen' for webnlg (known: default, seen, unseen, all)", error.Message);
    }

    [Fact]
    public void A_sweep_over_seen_unseen_and_all_expands_one_cell_set_per_split()
    {
        var vocabulary = TestVocabulary.Value with { DatasetKinds = DatasetCatalog.Kinds };
        var yaml = TestVocabulary.MinimalSpec.Replace("  kind: synthetic-e2e", $"  kind: webnlg\n  path: {TestData.Get("webnlg")}\n  splits: [seen, unseen, all]");
        var plan = SweepPlanner.PlanText(yaml, vocabulary, Path.GetTempPath());
        Assert.Equal(3 * 2 * 2 * 2, plan.Cells.Count);
        Assert.Equal(["all", "seen", "unseen"], plan.Cells.Select(c => c.Split).Distinct().Order());
        Assert.Equal(3, plan.Cells.Where(c => c.Size == 50 && c.Subsample == 0 && c.Seed == 0).Select(c => c.Key).Distinct().Count());
    }

    private static string Wrap(string entries) => $"<benchmark><entries>{entries}</entries></benchmark>";

    private static string Entry(string category, string eid, string triple, params (string Comment, string Text)[] lexes) =>
        $"<entry category=\"{category}\" eid=\"{eid}\" size=\"1\"><modifiedtripleset><mtriple>{triple}</mtriple></modifiedtripleset>" +
        string.Concat(lexes.Select((l, i) => $"<lex comment=\"{l.Comment}\" lid=\"Id{i + 1}\">{l.Text}</lex>")) + "</entry>";
}
