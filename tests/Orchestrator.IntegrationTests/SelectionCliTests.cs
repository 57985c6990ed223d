using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A spec with <c>selection:</c> run for real (embedded, the <c>test</c> preset, a few steps): the selection cells train, each
/// method's grid then trains with the rate of the lower stored mean dev loss, a method with <c>selection: none</c> runs its grid
/// beside the selection, <c>results --selection</c> and <c>status</c> show what the stored rows say, and a second run trains nothing.
/// </summary>
public sealed class SelectionCliTests : IDisposable
{
    private const string Spec = """
        name: it-select
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 2
        model:
          preset: test
        methods:
          - finetune
          - lora
          - {name: prefix, selection: none}
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        selection: {learning_rate: [1.0e-4, 5.0e-3]}
        training:
          learning_rate: 1.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 3
        decoding:
          strategy: greedy
          max_new_tokens: 4
          min_new_tokens: 1
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("selection-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static CellDefinition Definition(CellDescriptor cell) => CellDefinition.FromJson(cell.CellJson);

    [Fact]
    public async Task Validate_lists_the_selection_cells()
    {
        var spec = Path.Combine(_dir.FullName, "chooses.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var (ok, output, _) = await CliCapture.RunAsync("validate", spec);
        Assert.Equal(0, ok);
        Assert.Contains("Selection: 4 cells (chosen by dev_loss", output, StringComparison.Ordinal);
        Assert.Contains("selection/lora n=10 sub0 seed0  learning_rate=0.005", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_trains_the_selection_then_only_the_grid_of_the_lower_dev_loss_and_a_second_run_trains_nothing()
    {
        var spec = Path.Combine(_dir.FullName, "chooses.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var (exit, output, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName, "--pack", "1");
        Assert.True(exit == 0, err + output);
        Assert.Contains("10 done (0 reused), 0 failed", output, StringComparison.Ordinal);

        await using var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath);
        var sweep = (await store.FindSweepAsync("it-select"))!;
        var rows = await store.GetSweepCellsAsync(sweep.SweepId);
        Assert.All(rows, r => Assert.Equal(CellStatus.Succeeded, r.Result?.Status));

        // 2 methods × 2 rates selection cells (one subsample, one seed), then 3 methods × 2 seeds grid cells: nothing else.
        var selection = rows.Where(r => r.Cell.Method.StartsWith("selection/", StringComparison.Ordinal)).ToList();
        var grid = rows.Where(r => !r.Cell.Method.StartsWith("selection/", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, selection.Count);
        Assert.Equal(6, grid.Count);
        var runs = await store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey));
        Assert.Equal(10, runs.Count);
        Assert.All(runs.GroupBy(r => r.CellKey), g => Assert.Single(g));

        // The choice, computed here from the stored rows: per method, the rate whose selection cells have the lower mean dev loss.
        var chosen = new Dictionary<string, double>(StringComparer.Ordinal);
        var means = new Dictionary<(string Method, double Rate), double>();
        foreach (var method in new[] { "finetune", "lora" })
        {
            foreach (var byRate in selection.Where(r => r.Cell.Method == "selection/" + method).GroupBy(r => Definition(r.Cell).Training.LearningRate))
            {
                means[(method, byRate.Key)] = byRate.Average(r => JsonDocument.Parse(r.Result!.ProvenanceJson).RootElement.GetProperty("best_dev_loss").GetDouble());
            }

            chosen[method] = means.Where(m => m.Key.Method == method).MinBy(m => m.Value).Key.Rate;
            var cells = grid.Where(r => r.Cell.Method == method).ToList();
            Assert.Equal(2, cells.Count);
            Assert.All(cells, r => Assert.Equal(chosen[method], Definition(r.Cell).Training.LearningRate));
            Assert.All(cells, r => Assert.Equal(chosen[method],
                JsonDocument.Parse(r.Result!.ProvenanceJson).RootElement.GetProperty("training").GetProperty("learning_rate").GetDouble()));
        }

        // The choice is stored with the sweep, with the evidence it was made from.
        var storedChoices = await store.GetSelectionsAsync(sweep.SweepId);
        Assert.Equal(["finetune", "lora"], storedChoices.Select(c => c.Method));
        Assert.All(storedChoices, c => Assert.Equal(chosen[c.Method], double.Parse(c.Chosen["learning_rate"], CultureInfo.InvariantCulture)));
        Assert.All(storedChoices, c => Assert.Null(c.Size));

        // The method without a selection kept the spec's rate and ran beside the selection (queued with it, so it started before any
        // chosen grid cell, which joins later); each method's chosen grid started only after its own selection cells had finished.
        Assert.All(grid.Where(r => r.Cell.Method == "prefix"), r => Assert.Equal(1.0e-3, Definition(r.Cell).Training.LearningRate));
        var chosenKeys = grid.Where(r => r.Cell.Method != "prefix").Select(r => r.Cell.CellKey).ToHashSet(StringComparer.Ordinal);
        var firstChosenStart = runs.Where(r => chosenKeys.Contains(r.CellKey)).Min(r => r.StartedAt);
        var prefixKeys = grid.Where(r => r.Cell.Method == "prefix").Select(r => r.Cell.CellKey).ToHashSet(StringComparer.Ordinal);
        Assert.All(runs.Where(r => prefixKeys.Contains(r.CellKey)), r => Assert.True(r.StartedAt <= firstChosenStart));
        foreach (var method in new[] { "finetune", "lora" })
        {
            var gridStart = runs.Where(r => grid.Any(g => g.Cell.Method == method && g.Cell.CellKey == r.CellKey)).Min(r => r.StartedAt);
            Assert.All(selection.Where(r => r.Cell.Method == "selection/" + method), r => Assert.True(r.Result!.FinishedAt <= gridStart));
        }

        // results --selection (json) agrees with the stored rows.
        var (jsonExit, json, jsonErr) = await CliCapture.RunAsync("results", "it-select", "--selection", "--format", "json", "--data-dir", _dir.FullName);
        Assert.True(jsonExit == 0, jsonErr);
        var scopes = JsonDocument.Parse(json).RootElement.GetProperty("scopes").EnumerateArray().ToList();
        Assert.Equal(["finetune", "lora"], scopes.Select(s => s.GetProperty("method").GetString()));
        foreach (var scope in scopes)
        {
            var method = scope.GetProperty("method").GetString()!;
            Assert.Equal("chosen", scope.GetProperty("state").GetString());
            Assert.Equal(storedChoices.Single(c => c.Method == method).DecidedAt, scope.GetProperty("decided_at").GetDateTimeOffset());
            Assert.Equal(chosen[method], double.Parse(scope.GetProperty("chosen").GetProperty("learning_rate").GetString()!, CultureInfo.InvariantCulture));
            foreach (var candidate in scope.GetProperty("candidates").EnumerateArray())
            {
                var rate = double.Parse(candidate.GetProperty("values").GetProperty("learning_rate").GetString()!, CultureInfo.InvariantCulture);
                Assert.Equal((1, 1), (candidate.GetProperty("n").GetInt32(), candidate.GetProperty("expected").GetInt32()));
                Assert.Equal(means[(method, rate)], candidate.GetProperty("dev_loss_mean").GetDouble(), 12);
                Assert.Equal(rate == chosen[method], candidate.GetProperty("chosen").GetBoolean());
            }
        }

        // Two candidates: the chosen rate is the smallest or the largest, so each method gets the edge warning.
        var (_, table, tableErr) = await CliCapture.RunAsync("results", "it-select", "--selection", "--data-dir", _dir.FullName);
        Assert.Contains("lora: chosen learning_rate=", table, StringComparison.Ordinal);
        Assert.Contains("warning: lora: the chosen learning_rate", tableErr, StringComparison.Ordinal);
        var (_, status, _) = await CliCapture.RunAsync("status", "it-select", "--data-dir", _dir.FullName);
        Assert.Contains("selection: finetune: chosen learning_rate=", status, StringComparison.Ordinal);
        Assert.Contains("(it-select, completed): 10 cells", status, StringComparison.Ordinal);

        // Again: every cell is reused, the same choice is made, nothing trains.
        (exit, output, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName, "--pack", "1");
        Assert.True(exit == 0, err + output);
        Assert.Contains("10 done (10 reused), 0 failed", output, StringComparison.Ordinal);
        Assert.Equal(10, (await store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey))).Count);
        Assert.Equal(rows.Select(r => r.Cell.CellKey).Order(), (await store.GetSweepCellsAsync(sweep.SweepId)).Select(r => r.Cell.CellKey).Order());
    }

    [Fact]
    public async Task A_failed_selection_cell_blocks_its_methods_grid_with_its_name_and_stays_failed()
    {
        // A rate of 1e8 diverges (the loss turns NaN within a few steps): that selection cell fails on its one attempt.
        var spec = Path.Combine(_dir.FullName, "fails.yaml");
        await File.WriteAllTextAsync(spec, Spec
            .Replace("name: it-select", "name: it-select-fails")
            .Replace("  - lora\n", "")
            .Replace("selection: {learning_rate: [1.0e-4, 5.0e-3]}", "selection: {learning_rate: [1.0e-3, 1.0e+8]}\nexecution: {max_attempts: 1, lease_seconds: 60}"));
        var (exit, output, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName, "--pack", "1");
        Assert.True(exit == 3, err + output);

        await using var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath);
        var sweep = (await store.FindSweepAsync("it-select-fails"))!;
        var rows = await store.GetSweepCellsAsync(sweep.SweepId);
        var failed = Assert.Single(rows, r => r.Result?.Status == CellStatus.Failed);
        Assert.Equal("selection/finetune", failed.Cell.Method);
        Assert.Equal(1.0e8, Definition(failed.Cell).Training.LearningRate);
        Assert.DoesNotContain(rows, r => r.Cell.Method == "finetune");       // its grid never ran with a default
        Assert.Equal(2, rows.Count(r => r.Cell.Method == "prefix" && r.Result?.Status == CellStatus.Succeeded));
        var runs = await store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey));
        Assert.Equal(4, runs.Count);                                          // 2 selection + 2 prefix, the failed cell once
        Assert.Single(runs, r => r.CellKey == failed.Cell.CellKey);

        var label = $"selection/finetune n=10 sub0 seed0 (learning_rate=100000000, {failed.Cell.CellKey[..12]}): TrainingDivergedException";
        var (_, status, _) = await CliCapture.RunAsync("status", "it-select-fails", "--data-dir", _dir.FullName);
        Assert.Contains("selection: finetune: blocked: finetune: 1 selection cell(s) failed", status, StringComparison.Ordinal);
        Assert.Contains(label, status, StringComparison.Ordinal);
        var (_, json, _) = await CliCapture.RunAsync("results", "it-select-fails", "--selection", "--format", "json", "--data-dir", _dir.FullName);
        var scope = Assert.Single(JsonDocument.Parse(json).RootElement.GetProperty("scopes").EnumerateArray());
        Assert.Equal("blocked", scope.GetProperty("state").GetString());
        Assert.Contains(label, scope.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, scope.GetProperty("chosen").ValueKind);
        Assert.Empty(await store.GetSelectionsAsync(sweep.SweepId));                // nothing chosen, nothing stored
    }

    [Fact]
    public async Task Extend_keeps_the_stored_choice_and_adds_only_the_chosen_grids_new_cells()
    {
        var small = Spec.Replace("  - finetune\n", "", StringComparison.Ordinal).Replace("  - {name: prefix, selection: none}\n", "", StringComparison.Ordinal)
            .Replace("seeds: [0, 1]", "seeds: [0]", StringComparison.Ordinal).Replace("name: it-select", "name: it-select-extend", StringComparison.Ordinal);
        var spec = Path.Combine(_dir.FullName, "extend.yaml");
        await File.WriteAllTextAsync(spec, small);
        var (exit, output, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName, "--pack", "1");
        Assert.True(exit == 0, err + output);

        await File.WriteAllTextAsync(spec, small.Replace("seeds: [0]", "seeds: [0, 1]", StringComparison.Ordinal));
        (exit, output, err) = await CliCapture.RunAsync("extend", spec, "--data-dir", _dir.FullName);
        Assert.True(exit == 0, err + output);

        await using var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath);
        var sweep = (await store.FindSweepAsync("it-select-extend"))!;
        var rows = await store.GetSweepCellsAsync(sweep.SweepId);
        Assert.All(rows, r => Assert.Equal(CellStatus.Succeeded, r.Result?.Status));
        var chosen = Assert.Single(await store.GetSelectionsAsync(sweep.SweepId)).Chosen["learning_rate"];
        var grid = rows.Where(r => r.Cell.Method == "lora").ToList();
        Assert.Equal([0, 1], grid.Select(r => r.Cell.Seed).Order());
        Assert.All(grid, r => Assert.Equal(double.Parse(chosen, CultureInfo.InvariantCulture), Definition(r.Cell).Training.LearningRate));
        Assert.Equal(2, rows.Count(r => r.Cell.Method == "selection/lora"));

        // Each of the 2 selection cells and the 2 grid cells trained once: the extend trained only the new seed's cell.
        var runs = await store.GetTrainingRunsAsync(rows.Select(r => r.Cell.CellKey));
        Assert.Equal(4, runs.Count);
        Assert.Equal(rows.Select(r => r.Cell.CellKey).Order(), runs.Select(r => r.CellKey).Order());
    }
}
