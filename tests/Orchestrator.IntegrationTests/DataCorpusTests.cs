using System.Globalization;
using Orchestrator.Cli;
using Orchestrator.Core.Specs;
using Orchestrator.Data;

namespace Orchestrator.IntegrationTests;

/// <summary><c>orchestrator data corpus</c> on the real WebNLG and DART files of ../shared/data.</summary>
public sealed class DataCorpusTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-corpus-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static string Shared(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orchestrator.sln")))
            {
                var path = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", relative));
                Assert.True(File.Exists(path) || Directory.Exists(path), $"Shared data missing: '{path}'.");
                return path;
            }
        }

        throw new InvalidOperationException("Orchestrator.sln not found above the test binaries");
    }

    private static async Task<(int Exit, string Out, string Err)> CliAsync(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var (outText, errText) = (new StringWriter(CultureInfo.InvariantCulture), new StringWriter(CultureInfo.InvariantCulture));
        Console.SetOut(outText);
        Console.SetError(errText);
        try
        {
            return (await CliApp.RunAsync(args), outText.ToString(), errText.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
    }

    [Fact]
    public async Task The_corpus_holds_one_line_per_training_reference_and_combines_datasets()
    {
        var webnlg = Shared("webnlg");
        var dart = Shared("dart/dart-v1.1.1-full-dev.json");
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
