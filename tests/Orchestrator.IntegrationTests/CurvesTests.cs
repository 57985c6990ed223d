using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Curves;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

/// <summary>Training curves: a real embedded sweep stores one per cell, and <c>curves</c> prints or draws it.</summary>
public sealed class CurvesTests : IDisposable
{
    private const string Spec = """
        name: it-curves
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 4
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 12
          warmup_steps: 2
          eval_every: 4
        decoding:
          strategy: greedy
          max_new_tokens: 8
          min_new_tokens: 1
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-curves-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Each_trained_cell_stores_its_curve_and_curves_prints_and_draws_it()
    {
        var spec = Path.Combine(_dir.FullName, "curves.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var (exit, _, err) = await CliCapture.RunAsync("run", spec, "--data-dir", _dir.FullName);
        Assert.True(exit == 0, err);

        IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> cells;
        var curves = new Dictionary<string, TrainingCurve>();
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath))
        {
            cells = await store.GetSweepCellsAsync((await store.FindSweepAsync("it-curves"))!.SweepId);
            foreach (var (cell, _) in cells)
            {
                curves[cell.CellKey] = TrainingCurve.Parse((await store.GetCurveAsync(cell.CellKey))!);
            }
        }

        Assert.Equal(2, cells.Count);
        foreach (var (cell, result) in cells)
        {
            // The curve agrees with what the trainer recorded independently in the provenance.
            var curve = curves[cell.CellKey];
            using var provenance = JsonDocument.Parse(result!.ProvenanceJson);
            var p = provenance.RootElement;
            Assert.Equal(12, curve.Steps);
            Assert.Equal(Enumerable.Range(1, 12), curve.Train.Select(t => t.Step));
            Assert.Equal([4, 8, 12], curve.Dev.Select(d => d.Step));
            Assert.Equal(p.GetProperty("best_step").GetInt32(), curve.KeptStep);
            Assert.Equal(p.GetProperty("final_train_loss").GetDouble(), curve.Train[^1].Loss);
            Assert.Equal(p.GetProperty("best_dev_loss").GetDouble(), curve.KeptDevLoss);
            Assert.Equal(curve.Dev.Min(d => d.Loss), curve.KeptDevLoss);
        }

        var (cellKey, first) = (cells[0].Cell.CellKey, curves[cells[0].Cell.CellKey]);
        var (tableExit, table, tableErr) = await CliCapture.RunAsync("curves", "it-curves", cellKey[..10], "--data-dir", _dir.FullName);
        Assert.True(tableExit == 0, tableErr);
        var rows = table.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(2).ToList();
        Assert.Equal(12, rows.Count);
        var kept = Assert.Single(rows, r => r.EndsWith("← kept", StringComparison.Ordinal));
        Assert.StartsWith(first.KeptStep.ToString(CultureInfo.InvariantCulture).PadLeft(7), kept, StringComparison.Ordinal);
        Assert.Contains(first.Train[^1].Loss.ToString("F4", CultureInfo.InvariantCulture), rows[^1], StringComparison.Ordinal);

        var svg = Path.Combine(_dir.FullName, "curve.svg");
        var (plotExit, _, plotErr) = await CliCapture.RunAsync("curves", "it-curves", cellKey, "--out", svg, "--data-dir", _dir.FullName);
        Assert.True(plotExit == 0, plotErr);
        var text = await File.ReadAllTextAsync(svg);
        Assert.Contains("training loss", text, StringComparison.Ordinal);
        Assert.Contains($"kept step {first.KeptStep}", text, StringComparison.Ordinal);

        var (badExit, _, badErr) = await CliCapture.RunAsync("curves", "it-curves", "zzzzzzzz", "--data-dir", _dir.FullName);
        Assert.Equal(2, badExit);
        Assert.Contains("no cell of sweep", badErr, StringComparison.Ordinal);
    }
}
