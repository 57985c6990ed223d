using Orchestrator.Cli;
using Orchestrator.Cli.Commands;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// Reads never create a database, and say which one they looked in; a cluster that cannot be reached is named by host and
/// port; a finished sweep's status says so.
/// </summary>
public sealed class DataDirectoryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-home-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Reading_an_empty_data_directory_names_the_database_and_creates_nothing()
    {
        var empty = Path.Combine(_dir.FullName, "empty");
        var commands = new[]
        {
            new[] { "results", "demo" }, ["status", "demo"], ["export", "demo", "--format", "csv", "--out", Path.Combine(_dir.FullName, "x.csv")],
            ["plot", "demo", "--out", Path.Combine(_dir.FullName, "x.png")], ["rescore", "demo"], ["cancel", "demo"], ["resume", "demo"],
            ["artifacts", "list"],
        };
        foreach (var command in commands)
        {
            var (exit, _, error) = await CliCapture.RunAsync([.. command, "--data-dir", empty]);
            Assert.Equal(CliApp.ExitInvalidInput, exit);
            Assert.Contains($"no results database at {Path.Combine(empty, "results.db")} (data directory {empty} (--data-dir))", error);
            Assert.False(Directory.Exists(empty), $"{command[0]} created {empty}");
        }
    }

    [Fact]
    public async Task An_unknown_sweep_is_reported_with_the_database_that_was_searched()
    {
        var home = Path.Combine(_dir.FullName, "home");
        await using (var store = ResultStores.Sqlite(new EmbeddedOptions { DataDirectory = home }.ResultsDatabasePath))
        {
            await store.EnsureSchemaAsync();
        }

        var (exit, _, error) = await CliCapture.RunAsync("results", "demo", "--data-dir", home);
        Assert.Equal(CliApp.ExitInvalidInput, exit);
        Assert.Contains($"no sweep with id or name 'demo' in {Path.Combine(home, "results.db")} (data directory chosen by --data-dir) (there are no sweeps yet)", error);
    }

    [Fact]
    public async Task A_cluster_that_cannot_be_reached_is_named_by_host_and_port()
    {
        var port = LocalHttpServer.FreePort();
        var (exit, _, error) = await CliCapture.RunAsync("status", "demo", "--cluster", $"Host=127.0.0.1;Port={port};Username=postgres;Password=secret;Database=orch");
        Assert.Equal(1, exit);
        Assert.Contains($"cannot reach the cluster database at 127.0.0.1:{port}/orch", error);
        Assert.DoesNotContain("secret", error);

        var (migrateExit, _, migrateError) = await CliCapture.RunAsync("db", "migrate", "--cluster", $"Host=127.0.0.1;Port={port};Username=postgres;Database=orch");
        Assert.Equal(1, migrateExit);
        Assert.Contains($"127.0.0.1:{port}", migrateError);
    }

    [Fact]
    public async Task A_finished_sweep_is_shown_as_completed_by_status()
    {
        var spec = Path.Combine(_dir.FullName, "done.yaml");
        await File.WriteAllTextAsync(spec, """
            name: it-done
            dataset:
              kind: synthetic-e2e
              options: {mrs: 60, seed: 3}
              eval_limit: 2
            model:
              preset: test
            methods: [finetune]
            grid:
              sizes: [10]
              subsamples: 1
              seeds: [0]
            training:
              max_steps: 2
            decoding:
              strategy: greedy
              max_new_tokens: 6
              min_new_tokens: 1
            """);
        var home = Path.Combine(_dir.FullName, "home");
        var (exit, _, err) = await CliCapture.RunAsync("run", spec, "--data-dir", home);
        Assert.True(exit == 0, err);

        var (statusExit, status, statusErr) = await CliCapture.RunAsync("status", "it-done", "--data-dir", home);
        Assert.True(statusExit == 0, statusErr);
        Assert.Contains("(it-done, completed): 1 cells — 1 done", status);
        Assert.DoesNotContain("active", status);
        var (_, json, _) = await CliCapture.RunAsync("status", "it-done", "--data-dir", home, "--format", "json");
        Assert.Equal("completed", System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("active", true, true, "completed")]
    [InlineData("active", true, false, "finished")]
    [InlineData("active", false, false, "active")]
    [InlineData("cancelled", true, true, "cancelled")]
    public void A_sweep_with_nothing_left_to_run_is_not_shown_as_active(string stored, bool complete, bool allDone, string shown) =>
        Assert.Equal(shown, StatusReport.ShownStatus(stored, complete, allDone));
}
