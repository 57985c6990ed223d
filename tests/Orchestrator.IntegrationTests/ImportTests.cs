using System.Globalization;
using System.Text.Json;
using Orchestrator.Cli;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>export --format jsonl --full</c> on one machine, <c>import</c> into a fresh data directory, and the same spec run there: it
/// trains nothing (the export's <c>trainings</c> column stays 0) and gives the same points, scores and outputs. Real training in
/// embedded mode through the real command line; a definition that does not hash to its key and a file without definitions are
/// refused, and nothing is stored then.
/// </summary>
public sealed class ImportTests : IDisposable
{
    private const string Spec = """
        name: moved
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 3
        model:
          preset: test
        methods: [finetune, lora]
        grid:
          sizes: [10]
          subsamples: 2
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 3
          warmup_steps: 1
          eval_every: 3
        decoding:
          strategy: greedy
          max_new_tokens: 5
          min_new_tokens: 1
        metrics: [bleu]
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-import-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Home(string name) => Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;

    private static Task<(int Exit, string Out, string Err)> CliAsync(string home, params string[] args) => CliCapture.RunAsync([.. args, "--data-dir", home]);

    [Fact]
    public async Task Imported_cells_are_done_on_the_new_machine_with_the_same_numbers_and_nothing_trains_again()
    {
        var spec = Path.Combine(_dir.FullName, "moved.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var first = Home("first");
        var (runExit, _, runErr) = await CliAsync(first, "run", spec);
        Assert.True(runExit == 0, runErr);
        var file = Path.Combine(_dir.FullName, "moved.jsonl");
        var (exportExit, _, exportErr) = await CliAsync(first, "export", "moved", "--format", "jsonl", "--full", "--out", file);
        Assert.True(exportExit == 0, exportErr);

        // A line whose definition was edited is refused, and nothing of the file is stored.
        var second = Home("second");
        var lines = await File.ReadAllLinesAsync(file);
        var edited = Path.Combine(_dir.FullName, "edited.jsonl");
        await File.WriteAllLinesAsync(edited, lines.Select((l, i) => i == 1 ? l.Replace("\\u0022seed\\u0022:0", "\\u0022seed\\u0022:1", StringComparison.Ordinal)
            .Replace("\\\"seed\\\":0", "\\\"seed\\\":1", StringComparison.Ordinal) : l));
        Assert.NotEqual(lines[1], (await File.ReadAllLinesAsync(edited))[1]);
        var (badExit, _, badErr) = await CliAsync(second, "import", edited);
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains("edited.jsonl:2:", badErr);
        Assert.Contains("does not hash to its key", badErr);

        // An export without definitions says how to write one.
        var plain = Path.Combine(_dir.FullName, "plain.jsonl");
        Assert.Equal(0, (await CliAsync(first, "export", "moved", "--format", "jsonl", "--with-outputs", "--out", plain)).Exit);
        var (plainExit, _, plainErr) = await CliAsync(second, "import", plain);
        Assert.Equal(CliApp.ExitInvalidInput, plainExit);
        Assert.Contains("export it with `orchestrator export SWEEP --format jsonl --full`", plainErr);

        var (importExit, imported, importErr) = await CliAsync(second, "import", file);
        Assert.True(importExit == 0, importErr);
        Assert.Contains("4 cell(s) stored, 0 already had a stored success (kept), 0 not succeeded", imported);
        var (againExit, again, _) = await CliAsync(second, "import", file);
        Assert.Equal(0, againExit);
        Assert.Contains("0 cell(s) stored, 4 already had a stored success (kept)", again);

        // The same spec on the second machine: every cell already done, nothing trained.
        var (secondExit, secondOut, secondErr) = await CliAsync(second, "run", spec);
        Assert.True(secondExit == 0, secondErr);
        Assert.Contains("4 already done, 0 to train", secondOut + secondErr);
        var cellsFile = Path.Combine(_dir.FullName, "second.csv");
        Assert.Equal(0, (await CliAsync(second, "export", "moved", "--format", "jsonl", "--with-outputs", "--out", cellsFile)).Exit);
        var secondCells = (await File.ReadAllLinesAsync(cellsFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var firstCells = (await File.ReadAllLinesAsync(plain)).Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(c => c.GetProperty("cell_key").GetString()!);
        Assert.Equal(4, secondCells.Count);
        foreach (var cell in secondCells)
        {
            Assert.Equal(0, cell.GetProperty("trainings").GetInt32());
            Assert.Equal("succeeded", cell.GetProperty("status").GetString());
            var before = firstCells[cell.GetProperty("cell_key").GetString()!];
            Assert.Equal(before.GetProperty("metrics").GetRawText(), cell.GetProperty("metrics").GetRawText());
            Assert.Equal(before.GetProperty("outputs").GetRawText(), cell.GetProperty("outputs").GetRawText());
            Assert.Equal(before.GetProperty("provenance").GetRawText(), cell.GetProperty("provenance").GetRawText());
        }

        var (_, firstPoints, _) = await CliAsync(first, "results", "moved", "--format", "json");
        var (_, secondPoints, _) = await CliAsync(second, "results", "moved", "--format", "json");
        Assert.Equal(JsonDocument.Parse(firstPoints).RootElement.GetProperty("points").GetRawText(),
            JsonDocument.Parse(secondPoints).RootElement.GetProperty("points").GetRawText());

        // The training curve came along (the cell page and `curves` show it).
        var key = secondCells[0].GetProperty("cell_key").GetString()!;
        var curve = Path.Combine(_dir.FullName, "curve.svg");
        var (curveExit, _, curveErr) = await CliAsync(second, "curves", "moved", key[..12], "--out", curve);
        Assert.True(curveExit == 0, curveErr);
        Assert.True(new FileInfo(curve).Length > 0, string.Format(CultureInfo.InvariantCulture, "{0} is empty", curve));
    }
}
