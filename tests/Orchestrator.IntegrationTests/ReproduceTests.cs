using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Cli;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Training;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>orchestrator reproduce SWEEP CELL</c>: a cell trained by the worker in a sweep is rerun from its stored definition,
/// alone, and gives bit-identical metrics and outputs (same machine, same thread count); bad keys get one-line errors.
/// </summary>
public sealed class ReproduceTests : IDisposable
{
    private const string Spec = """
        name: repro
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 5
        model:
          preset: test
        methods: [finetune, {name: lora, options: {r: 4}, training: {learning_rate: 1.0e-2}}]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0, 1]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 10
          warmup_steps: 2
          eval_every: 5
        decoding: {strategy: greedy, max_new_tokens: 12, min_new_tokens: 1}
        metrics: [bleu, rouge]
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-repro-");

    public void Dispose() => _dir.Delete(recursive: true);

    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        CliCapture.RunAsync([.. args, "--data-dir", _dir.FullName]);

    [Fact]
    public async Task A_stored_cell_rerun_from_its_key_reproduces_its_metrics_and_outputs_exactly()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        // Packs of 2: the two LoRA cells train together.
        using (var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, PackSize = 2 }))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            await SweepSubmitter.SubmitAsync(grains, plan);
            var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal(4, final.Done);
            await host.StopAsync(CancellationToken.None);
        }

        var key = plan.Cells.Where(c => c.Method == "finetune").ElementAt(1).Key;
        string device;
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath))
        {
            device = (await store.GetSweepCellsAsync(plan.SweepId)).Single(c => c.Cell.CellKey == key).Result!.Device;
        }

        // The rerun takes the stored result's thread count (the order of float sums depends on it), whatever this process
        // was set to: here one thread more than the worker had.
        int storedThreads = TorchRuntime.ThreadsOf(device) ?? throw new InvalidOperationException($"no thread count in '{device}'");
        int processThreads = TorchRuntime.Threads;
        TorchRuntime.EnsureAvailable(storedThreads + 1);
        (int exit, string output, string error) = (0, "", "");
        try
        {
            (exit, output, error) = await CliAsync("reproduce", "repro", key[..10]);
        }
        finally
        {
            TorchRuntime.EnsureAvailable(processThreads);
        }

        Assert.Contains($"on {storedThreads} thread{(storedThreads == 1 ? "" : "s")} (stored on: {device})", output, StringComparison.Ordinal);
        Assert.True(exit == 0, output + error);
        Assert.Contains("reproduced exactly", output, StringComparison.Ordinal);
        Assert.Contains("bleu", output, StringComparison.Ordinal);
        Assert.Contains("rougeL", output, StringComparison.Ordinal);
        Assert.DoesNotContain("DIFFERENT", output, StringComparison.Ordinal);
        Assert.Contains("outputs: 5/5 identical", output, StringComparison.Ordinal);

        // The stored result is untouched, and a changed stored value is reported as a difference (the comparison can fail).
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath))
        {
            var stored = (await store.GetSweepCellsAsync(plan.SweepId)).Single(c => c.Cell.CellKey == key).Result!;
            var bumped = stored.Metrics.ToDictionary(kv => kv.Key, kv => kv.Key == "bleu" ? kv.Value + 1e-9 : kv.Value);
            Assert.True(await store.UpdateMetricsAsync(key, stored.Attempt, bumped));
        }

        var (changedExit, changedOut, changedErr) = await CliAsync("reproduce", "repro", key[..10]);
        Assert.Equal(1, changedExit);
        Assert.Contains("DIFFERENT", changedOut, StringComparison.Ordinal);
        Assert.Matches(@"differences:\n  bleu: stored \S+, rerun \S+ \(difference -1E-09\)", changedOut.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("rougeL:", changedOut, StringComparison.Ordinal); // only what differs is listed
        Assert.StartsWith("error: not reproduced exactly; same code and thread count", changedErr, StringComparison.Ordinal);

        // A packed cell: trained with its partner, rerun alone, the same bits.
        var lora = plan.Cells.First(c => c.Method == "lora").Key;
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = _dir.FullName }.ResultsDatabasePath))
        {
            var stored = (await store.GetSweepCellsAsync(plan.SweepId)).Single(c => c.Cell.CellKey == lora).Result!;
            Assert.Contains("\"packed\":true", stored.ProvenanceJson, StringComparison.Ordinal);
        }

        var (packedExit, packedOut, packedErr) = await CliAsync("reproduce", "repro", lora[..10]);
        Assert.True(packedExit == 0, packedOut + packedErr);
        Assert.Contains("reproduced exactly", packedOut, StringComparison.Ordinal);

        // After a rescore that adds metrics, the rerun is rescored the same way: every stored metric is compared, none is NaN.
        var (rescoreExit, rescoreOut, rescoreErr) = await CliAsync("rescore", "repro", "--metrics", "bleu,ter,nist");
        Assert.True(rescoreExit == 0, rescoreOut + rescoreErr);
        var (afterExit, afterOut, afterErr) = await CliAsync("reproduce", "repro", lora[..10]);
        Assert.True(afterExit == 0, afterOut + afterErr);
        Assert.Matches(@"ter +stored .* equal", afterOut);
        Assert.Matches(@"nist +stored .* equal", afterOut);
        Assert.DoesNotContain("NaN", afterOut, StringComparison.Ordinal);
        Assert.Contains("reproduced exactly", afterOut, StringComparison.Ordinal);

        var (zeroExit, _, zeroErr) = await CliAsync("reproduce", "repro", key[..10], "--threads", "0");
        Assert.Equal(1, zeroExit); // a parse error, as for every option validator
        Assert.Contains("--threads must be a positive integer", zeroErr, StringComparison.Ordinal);

        var (badExit, _, badErr) = await CliAsync("reproduce", "repro", "ffffffffff");
        Assert.Equal(CliApp.ExitInvalidInput, badExit);
        Assert.Contains("no cell of sweep", badErr, StringComparison.Ordinal);
        var (shortExit, _, shortErr) = await CliAsync("reproduce", "repro", "ab");
        Assert.Equal(CliApp.ExitInvalidInput, shortExit);
        Assert.Contains("too short", shortErr, StringComparison.Ordinal);
    }
}
