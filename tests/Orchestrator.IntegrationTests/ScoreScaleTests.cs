using System.Text.Json;
using Orchestrator.Evaluation;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary><c>orchestrator score</c> prints BLEU and TER on the scale sweep results store them (0–100, as sacreBLEU).</summary>
public sealed class ScoreScaleTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-score-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Ter_and_bleu_from_score_equal_what_a_cell_stores()
    {
        string[] hypotheses = ["the cat sat on the mat", "a pub in the city centre", "it serves cheap food"];
        string[] references = ["the cat is on the mat", "a pub in the centre of the city", "it serves cheap italian food"];
        var hyp = Path.Combine(_dir.FullName, "hyp.txt");
        var refs = Path.Combine(_dir.FullName, "ref.txt");
        await File.WriteAllLinesAsync(hyp, hypotheses);
        await File.WriteAllLinesAsync(refs, references);

        var (exit, output, error) = await CliCapture.RunAsync("score", "--hyp", hyp, "--refs", refs, "--metrics", "bleu,ter", "--format", "json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var groups = references.Select(r => (IReadOnlyList<string>)[r]).ToList();
        var stored = MetricSuite.Score("ter", hypotheses, groups).Single().Value;
        var ter = json.RootElement.GetProperty("ter").GetProperty("score").GetDouble();
        Assert.Equal(stored, ter, 12);
        Assert.Equal(100.0 * Ter.Corpus(hypotheses, groups).Score, ter, 12);
        Assert.InRange(ter, 1.0, 100.0);
        Assert.Equal(MetricSuite.Score("bleu", hypotheses, groups).Single().Value, json.RootElement.GetProperty("bleu").GetProperty("score").GetDouble(), 12);

        var (textExit, text, _) = await CliCapture.RunAsync("score", "--hyp", hyp, "--refs", refs, "--metrics", "ter");
        Assert.Equal(0, textExit);
        Assert.Contains($"TER         = {ter.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)}  [tercom 0.7.25 defaults, ×100]", text);

        var (typoExit, _, typoError) = await CliCapture.RunAsync("score", "--hyp", hyp, "--refs", refs, "--metrics", "bleu,terr");
        Assert.Equal(2, typoExit);
        Assert.Contains("--metrics: unknown metric 'terr' (did you mean 'ter'?)", typoError);
    }
}
