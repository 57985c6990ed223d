using System.Globalization;
using Orchestrator.Cli;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.TestKit;

namespace Orchestrator.IntegrationTests;

/// <summary><c>orchestrator data corpus</c> on the WebNLG and DART excerpts committed under tests/data.</summary>
public sealed class DataCorpusTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-corpus-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) => CliCapture.RunAsync(args);

    [Fact]
    public async Task The_corpus_holds_one_line_per_training_reference_and_combines_datasets()
    {
        var webnlg = TestData.Get("webnlg");
        var dart = TestData.Get("dart/dart-v1.1.1-dev-excerpt.json");
        var file = Path.Combine(_dir.FullName, "corpus", "text.txt");

        var (exit, output, error) = await CliAsync("data", "corpus", "--dataset", "webnlg", "--path", webnlg, "--out", file);
        Assert.True(exit == 0, error);
        var train = DatasetCatalog.ReadContents(DatasetCatalog.Resolve(new DatasetSpec("webnlg", webnlg, ["default"], null, new SortedDictionary<string, string>()), "/"))
            .Part("train")!.Entries;
        var lines = File.ReadAllLines(file);
        Assert.Equal(train.Sum(e => e.References.Count), lines.Length);
        Assert.Equal((train[0].Source + " " + train[0].References[0]).Trim(), lines[0]);
        Assert.Contains($"wrote {lines.Length} documents", output, StringComparison.Ordinal);
        // Exactly the training part, in order (never the test set).
        Assert.Equal(train.SelectMany(e => e.References.Select(r => (e.Source + " " + r).ReplaceLineEndings(" ").Trim())), lines);

        var (dartExit, _, dartError) = await CliAsync("data", "corpus", "--dataset", "dart", "--path", dart, "--part", "all", "--out", file, "--append", "--text-only");
        Assert.True(dartExit == 0, dartError);
        Assert.True(File.ReadAllLines(file).Length > lines.Length);

        var (missingExit, _, missingError) = await CliAsync("data", "corpus", "--dataset", "dart", "--path", dart, "--out", file);
        Assert.Equal(2, missingExit);
        Assert.Contains("has no 'train' part", missingError, StringComparison.Ordinal);
    }
}
