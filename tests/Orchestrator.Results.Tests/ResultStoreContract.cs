using System.Data.Common;
using System.Globalization;

namespace Orchestrator.Results.Tests;

/// <summary>
/// The behaviour of <see cref="IResultStore"/>, run against every provider by a derived class. Tests of one class share
/// a database, so every test uses its own key prefix.
/// </summary>
public abstract partial class ResultStoreContract : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly List<IResultStore> _stores = [];

    /// <summary>Unique per test: prefix for ids and keys.</summary>
    protected string P { get; } = Guid.NewGuid().ToString("N")[..8];

    /// <summary>Where the shared store lives (a file path or a connection string).</summary>
    protected string Location { get; private set; } = "";

    protected IResultStore Store { get; private set; } = null!;

    /// <summary>The database this test class shares.</summary>
    protected abstract Task<string> SharedDatabaseAsync();

    /// <summary>A new, empty database.</summary>
    protected abstract Task<string> NewDatabaseAsync();

    protected abstract IResultStore CreateStore(string location);

    /// <summary>A raw ADO.NET connection (not opened) to check the tables with SQL.</summary>
    protected abstract DbConnection CreateRawConnection(string location);

    public virtual async Task InitializeAsync()
    {
        Location = await SharedDatabaseAsync();
        Store = Open(Location);
        await Store.EnsureSchemaAsync();
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }

    protected IResultStore Open(string location)
    {
        var store = CreateStore(location);
        _stores.Add(store);
        return store;
    }

    // ------------------------------------------------------------------ schema

    [Fact]
    public async Task EnsureSchema_twice_is_idempotent()
    {
        await Store.EnsureSchemaAsync();
        await Store.EnsureSchemaAsync();

        Assert.Equal(ResultSchema.Migrations.Count, await CountAsync("SELECT COUNT(*) FROM schema_migrations"));
        Assert.Equal(ResultSchema.LatestVersion, await CountAsync("SELECT MAX(version) FROM schema_migrations"));
        foreach (var table in new[] { "sweeps", "cells", "sweep_cells", "cell_results", "cell_metrics", "cell_outputs" })
        {
            await CountAsync($"SELECT COUNT(*) FROM {table}"); // exists
        }
    }

    [Fact]
    public async Task EnsureSchema_racing_on_a_fresh_database_applies_each_migration_once()
    {
        var fresh = await NewDatabaseAsync();
        var stores = Enumerable.Range(0, 4).Select(_ => Open(fresh)).ToList();

        await Task.WhenAll(stores.Select(s => s.EnsureSchemaAsync()));

        Assert.Equal(ResultSchema.Migrations.Count, await CountInAsync(fresh, "SELECT COUNT(*) FROM schema_migrations"));
        Assert.True(await stores[0].UpsertResultAsync(Result("race", 1)));
    }

    [Fact]
    public async Task EnsureSchema_creates_the_tables_when_other_tables_already_exist()
    {
        var fresh = await NewDatabaseAsync();
        await ExecuteAsync("CREATE TABLE orleansquery (querykey varchar(64) NOT NULL PRIMARY KEY, querytext text)", fresh);
        var store = Open(fresh);

        await store.EnsureSchemaAsync();

        Assert.Equal(0, await CountInAsync(fresh, "SELECT COUNT(*) FROM cell_results"));
        Assert.True(await store.UpsertResultAsync(Result("other", 1)));
    }

    // ------------------------------------------------------------------ sweeps

    [Fact]
    public async Task SaveSweep_is_idempotent()
    {
        var sweep = Sweep("s1", "grid", T0, 3);
        var cells = new[] { Cell("a"), Cell("b"), Cell("c") };

        await Store.SaveSweepAsync(sweep, cells);
        await Store.SaveSweepAsync(sweep, cells);

        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM sweeps WHERE sweep_id = @k", K("s1")));
        Assert.Equal(3, await CountAsync("SELECT COUNT(*) FROM sweep_cells WHERE sweep_id = @k", K("s1")));
        Assert.Equal(3, await CountAsync("SELECT COUNT(*) FROM cells WHERE cell_key LIKE @k", P + "-%"));
        Assert.Equal(sweep, await Store.FindSweepAsync(K("s1")));
    }

    [Fact]
    public async Task SaveSweep_again_replaces_the_membership_and_keeps_shared_cells()
    {
        await Store.SaveSweepAsync(Sweep("s1", "grid", T0, 3), [Cell("a"), Cell("b"), Cell("c")]);
        await Store.SaveSweepAsync(Sweep("s1", "grid", T0, 2), [Cell("a"), Cell("d")]);

        var cells = await Store.GetSweepCellsAsync(K("s1"));
        Assert.Equal([K("a"), K("d")], cells.Select(c => c.Cell.CellKey).Order(StringComparer.Ordinal));
        Assert.Equal(2, (await Store.FindSweepAsync(K("s1")))!.CellCount);
        Assert.Equal(4, await CountAsync("SELECT COUNT(*) FROM cells WHERE cell_key LIKE @k", P + "-%"));
    }

    [Fact]
    public async Task FindSweep_by_id_and_by_name_returns_the_latest()
    {
        var older = Sweep("old", "nightly", new DateTimeOffset(2025, 1, 1, 10, 0, 0, TimeSpan.FromHours(2)), 1);
        var newer = Sweep("new", "nightly", new DateTimeOffset(2025, 1, 2, 10, 0, 0, TimeSpan.FromHours(-5)), 1);
        var other = Sweep("x", "other", T0, 1);
        await Store.SaveSweepAsync(newer, [Cell("a")]);
        await Store.SaveSweepAsync(older, [Cell("a")]);
        await Store.SaveSweepAsync(other, [Cell("b")]);

        Assert.Equal(older, await Store.FindSweepAsync(K("old")));
        Assert.Equal(newer, await Store.FindSweepAsync(K("new")));
        Assert.Equal(newer, await Store.FindSweepAsync(P + "-nightly"));
        Assert.Equal(TimeSpan.Zero, (await Store.FindSweepAsync(K("old")))!.SubmittedAt.Offset);
        Assert.Null(await Store.FindSweepAsync(K("missing")));
    }

    // ------------------------------------------------------------------ results

    [Fact]
    public async Task Upsert_of_the_same_key_twice_leaves_one_row()
    {
        Assert.True(await Store.UpsertResultAsync(Result("a", 1)));
        Assert.False(await Store.UpsertResultAsync(Result("a", 1))); // the first success is kept

        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key = @k", K("a")));
        Assert.Equal(2, await CountAsync("SELECT COUNT(*) FROM cell_metrics WHERE cell_key = @k", K("a")));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_outputs WHERE cell_key = @k", K("a")));
    }

    [Fact]
    public async Task The_first_success_is_kept_and_a_later_success_is_refused_with_metrics_unchanged()
    {
        await Store.SaveSweepAsync(Sweep("s", "n", T0, 1), [Cell("a")]);
        Assert.True(await Store.UpsertResultAsync(Result("a", 2, metrics: new() { ["acc"] = 0.9 }, outputs: ["model-2.bin"])));

        // A second success (a late worker, a re-leased cell), with a higher or a lower attempt, changes nothing readers saw.
        Assert.False(await Store.UpsertResultAsync(Result("a", 3, metrics: new() { ["acc"] = 0.1, ["f1"] = 0.1 }, outputs: ["late"])));
        var stored = await Store.WriteResultAsync(Result("a", 1, metrics: new() { ["acc"] = 0.2 }, outputs: ["stale"]));
        Assert.Equal(new StoredResult(false, CellStatus.Succeeded, 2, null), stored);

        var (_, result) = Assert.Single(await Store.GetSweepCellsAsync(K("s")));
        Assert.NotNull(result);
        Assert.Equal(2, result.Attempt);
        Assert.Equal(new Dictionary<string, double> { ["acc"] = 0.9 }, result.Metrics);
        Assert.Equal(["model-2.bin"], result.Outputs);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_metrics WHERE cell_key = @k", K("a")));
        Assert.Equal(0.9, await ScalarDoubleAsync("SELECT value FROM cell_metrics WHERE cell_key = @k", K("a")));
    }

    [Fact]
    public async Task A_later_failure_replaces_an_earlier_one_and_a_stale_failure_is_refused()
    {
        Assert.True(await Store.UpsertResultAsync(Result("f", 2, CellStatus.Failed, error: "second")));
        var stale = await Store.WriteResultAsync(Result("f", 1, CellStatus.Failed, error: "first"));
        Assert.Equal(new StoredResult(false, CellStatus.Failed, 2, "second"), stale);
        Assert.Equal(new StoredResult(true, CellStatus.Failed, 3, "third"), await Store.WriteResultAsync(Result("f", 3, CellStatus.Failed, error: "third")));
    }

    [Fact]
    public async Task A_success_replaces_a_stored_failure_whatever_the_attempt_numbers()
    {
        // rerun-failed: attempt 2 failed and was stored; a success reported as attempt 1 (a late worker) is still the truth.
        Assert.True(await Store.UpsertResultAsync(Result("r", 2, CellStatus.Failed, error: "data volume not mounted")));
        Assert.Equal(new StoredResult(true, CellStatus.Succeeded, 1, null), await Store.WriteResultAsync(Result("r", 1)));
        Assert.Equal(new HashSet<string> { K("r") }, await Store.GetSucceededKeysAsync([K("r")]));
        Assert.Equal(1, await CountAsync("SELECT attempt FROM cell_results WHERE cell_key = @k", K("r")));
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key = @k AND error IS NOT NULL", K("r")));
    }

    [Fact]
    public async Task Failed_never_replaces_succeeded_but_a_later_success_replaces_a_failure()
    {
        Assert.True(await Store.UpsertResultAsync(Result("ok", 1)));
        Assert.False(await Store.UpsertResultAsync(Result("ok", 2, CellStatus.Failed, error: "OOM")));
        Assert.False(await Store.UpsertResultAsync(Result("ok", 1, CellStatus.Failed, error: "OOM")));

        Assert.True(await Store.UpsertResultAsync(Result("flaky", 1, CellStatus.Failed, error: "CUDA error")));
        Assert.True(await Store.UpsertResultAsync(Result("flaky", 2, CellStatus.Failed, error: "again")));
        Assert.True(await Store.UpsertResultAsync(Result("flaky", 3)));

        Assert.Equal(new HashSet<string> { K("ok"), K("flaky") }, await Store.GetSucceededKeysAsync([K("ok"), K("flaky")]));
        Assert.Equal(1, await CountAsync("SELECT attempt FROM cell_results WHERE cell_key = @k", K("ok")));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key = @k AND status = 'succeeded'", K("ok")));
        Assert.Equal(3, await CountAsync("SELECT attempt FROM cell_results WHERE cell_key = @k", K("flaky")));
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key = @k AND error IS NOT NULL", K("flaky")));
    }

    [Fact]
    public async Task Upsert_rejects_an_unknown_status()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.UpsertResultAsync(Result("a", 1, "done")));
    }

    [Fact]
    public async Task GetSucceededKeys_returns_only_succeeded_keys_among_those_asked()
    {
        await Store.UpsertResultAsync(Result("s1", 1));
        await Store.UpsertResultAsync(Result("s2", 1));
        await Store.UpsertResultAsync(Result("f", 1, CellStatus.Failed, error: "boom"));

        var asked = Enumerable.Range(0, 1200).Select(i => K($"none{i}")).Concat([K("s1"), K("f"), K("s1")]).ToList();
        var succeeded = await Store.GetSucceededKeysAsync(asked);

        Assert.Equal(new HashSet<string> { K("s1") }, succeeded);
        Assert.Empty(await Store.GetSucceededKeysAsync([]));
    }

    [Fact]
    public async Task GetSweepCells_joins_results_metrics_and_outputs()
    {
        var cells = new[] { Cell("c", dataset: "b-set"), Cell("a", dataset: "a-set"), Cell("b", dataset: "a-set", size: 2) };
        await Store.SaveSweepAsync(Sweep("s", "n", T0, 3), cells);
        var succeeded = Result("a", 1, metrics: new() { ["acc"] = 0.75, ["nan_metric"] = double.NaN, ["inf"] = double.PositiveInfinity },
            outputs: ["runs/a/model.bin", "runs/a/log.txt"]);
        var failed = Result("c", 2, CellStatus.Failed, error: "diverged", metrics: new(), outputs: []);
        await Store.UpsertResultAsync(succeeded);
        await Store.UpsertResultAsync(failed);
        await Store.UpsertResultAsync(Result("not-in-sweep", 1));

        var rows = await Store.GetSweepCellsAsync(K("s"));

        Assert.Equal([K("a"), K("b"), K("c")], rows.Select(r => r.Cell.CellKey)); // ordered by dataset, split, method, size, …
        Assert.Equal(cells[1], rows[0].Cell);
        AssertSameResult(succeeded, rows[0].Result);
        Assert.True(double.IsNaN(rows[0].Result!.Metrics["nan_metric"]));
        Assert.Null(rows[1].Result);
        AssertSameResult(failed, rows[2].Result);
        Assert.Equal("diverged", rows[2].Result!.Error);
        Assert.Empty(await Store.GetSweepCellsAsync(K("missing")));

        // Without outputs: the same cells and results, the outputs left out.
        var lean = await Store.GetSweepCellsAsync(K("s"), withOutputs: false);
        Assert.Equal(rows.Select(r => r.Cell), lean.Select(r => r.Cell));
        AssertSameResult(succeeded with { Outputs = [] }, lean[0].Result);
        Assert.Null(lean[1].Result);
        AssertSameResult(failed, lean[2].Result);
        Assert.Equal(succeeded.Outputs, await Store.GetOutputsAsync(K("a")));
        Assert.Empty(await Store.GetOutputsAsync(K("b")));
    }

    [Fact]
    public async Task A_cell_shared_by_two_sweeps_appears_in_both_with_its_result()
    {
        await Store.SaveSweepAsync(Sweep("s1", "one", T0, 2), [Cell("shared"), Cell("only1")]);
        await Store.SaveSweepAsync(Sweep("s2", "two", T0, 2), [Cell("shared"), Cell("only2")]);
        var result = Result("shared", 1, metrics: new() { ["acc"] = 0.8 });
        await Store.UpsertResultAsync(result);

        var one = await Store.GetSweepCellsAsync(K("s1"));
        var two = await Store.GetSweepCellsAsync(K("s2"));

        AssertSameResult(result, one.Single(r => r.Cell.CellKey == K("shared")).Result);
        AssertSameResult(result, two.Single(r => r.Cell.CellKey == K("shared")).Result);
        Assert.Null(one.Single(r => r.Cell.CellKey == K("only1")).Result);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cells WHERE cell_key = @k", K("shared")));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key = @k", K("shared")));
    }

    [Fact]
    public async Task Concurrent_upserts_from_8_tasks_to_distinct_keys_all_land()
    {
        var second = Open(Location); // another process sharing the database, e.g. the CLI next to a worker
        const int tasks = 8, perTask = 10;

        var written = await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var store = t % 2 == 0 ? Store : second;
            var count = 0;
            for (var i = 0; i < perTask; i++)
            {
                count += await store.UpsertResultAsync(Result($"t{t}-{i}", 1, metrics: new() { ["acc"] = t + i / 100.0 })) ? 1 : 0;
            }

            return count;
        })));

        Assert.All(written, w => Assert.Equal(perTask, w));
        Assert.Equal(tasks * perTask, await CountAsync("SELECT COUNT(*) FROM cell_results WHERE cell_key LIKE @k", P + "-t%"));
        Assert.Equal(tasks * perTask, await CountAsync("SELECT COUNT(*) FROM cell_metrics WHERE cell_key LIKE @k", P + "-t%"));
        var keys = Enumerable.Range(0, tasks).SelectMany(t => Enumerable.Range(0, perTask).Select(i => K($"t{t}-{i}")));
        Assert.Equal(tasks * perTask, (await Store.GetSucceededKeysAsync(keys)).Count);
    }

    [Fact]
    public async Task Concurrent_upserts_of_one_key_keep_one_success_with_its_own_metrics()
    {
        var offered = await Task.WhenAll(Enumerable.Range(1, 8).Select(attempt => Task.Run(() =>
            Store.WriteResultAsync(attempt % 2 == 0
                ? Result("hot", attempt, metrics: new() { ["attempt"] = attempt })
                : Result("hot", attempt, CellStatus.Failed, error: $"attempt {attempt} failed")))));

        // Whatever the order, a success is stored, it is the only success written, and every writer was told which one.
        var winner = Assert.Single(offered, o => o.Written && o.Succeeded);
        Assert.All(offered, o => Assert.True(!o.Written || o == winner || !o.Succeeded));
        Assert.Equal(winner.Attempt, await CountAsync("SELECT attempt FROM cell_results WHERE cell_key = @k AND status = 'succeeded'", K("hot")));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_metrics WHERE cell_key = @k", K("hot")));
        Assert.Equal(winner.Attempt, await ScalarDoubleAsync("SELECT value FROM cell_metrics WHERE cell_key = @k", K("hot")));
    }

    // ------------------------------------------------------------------ attempts

    [Fact]
    public async Task Attempts_are_counted_by_one_statement_each_and_concurrent_begins_get_distinct_numbers()
    {
        Assert.Equal(1, await Store.BeginAttemptAsync(K("c"), limit: 3));
        var numbers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.BeginAttemptAsync(K("c"), limit: 3))));
        Assert.Equal(Enumerable.Range(2, 8), numbers.Order());
        Assert.Equal(9, await CountAsync("SELECT attempts FROM cell_attempts WHERE cell_key = @k", K("c")));
        Assert.Equal(3, await CountAsync("SELECT attempt_limit FROM cell_attempts WHERE cell_key = @k", K("c")));

        // A cell whose result row records a later attempt than its counter (an older database) continues after it.
        Assert.True(await Store.UpsertResultAsync(Result("old", 4, CellStatus.Failed, error: "x")));
        Assert.Equal(5, await Store.BeginAttemptAsync(K("old"), limit: 6));
    }

    [Fact]
    public async Task Granting_attempts_raises_limits_on_top_of_the_counts_and_never_lowers_a_count_or_a_limit()
    {
        await Store.BeginAttemptAsync(K("used"), limit: 2);
        await Store.BeginAttemptAsync(K("used"), limit: 2);   // 2 of 2: exhausted
        await Store.BeginAttemptAsync(K("half"), limit: 3);   // 1 of 3

        var resume = await Store.GrantAttemptsAsync([K("used"), K("half"), K("new")], 3, includeExhausted: false);
        Assert.Equal(new AttemptBudget(2, 2), resume[K("used")]);   // resume leaves a used-up budget alone
        Assert.Equal(new AttemptBudget(1, 4), resume[K("half")]);
        Assert.Equal(new AttemptBudget(0, 3), resume[K("new")]);

        var rerun = await Store.GrantAttemptsAsync([K("used"), K("half")], 2, includeExhausted: true);
        Assert.Equal(new AttemptBudget(2, 4), rerun[K("used")]);    // a fresh budget on top of the count
        Assert.Equal(new AttemptBudget(1, 4), rerun[K("half")]);    // never lowered

        await Store.RaiseAttemptLimitAsync(K("used"), 5);             // a released lease gives its attempt back
        await Store.RaiseAttemptLimitAsync(K("used"), 3);             // an older write arriving late does not lower it
        Assert.Equal(5, await CountAsync("SELECT attempt_limit FROM cell_attempts WHERE cell_key = @k", K("used")));
        Assert.Equal(3, await Store.BeginAttemptAsync(K("used"), limit: 4));
        Assert.Equal(5, await CountAsync("SELECT attempt_limit FROM cell_attempts WHERE cell_key = @k", K("used")));
    }

    // ------------------------------------------------------------------ helpers

    // ------------------------------------------------------------------ queue support

    [Fact]
    public async Task Schema_version_is_the_latest_and_RequireSchema_accepts_it_but_refuses_an_empty_database()
    {
        Assert.Equal(ResultStores.SchemaVersion, await Store.GetSchemaVersionAsync());
        await ResultStores.RequireSchemaAsync(Store);
        var empty = Open(await NewDatabaseAsync());
        Assert.Equal(0, await empty.GetSchemaVersionAsync());
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => ResultStores.RequireSchemaAsync(empty));
        Assert.Contains("orchestrator db migrate", ex.Message);
    }

    [Fact]
    public async Task Sweep_settings_and_status_round_trip_and_filter()
    {
        Assert.Equal("needed", Sweep("d", "n", T0, 1).ArtifactRetention);
        var sweep = Sweep("s", "n", T0, 1) with
        {
            MaxAttempts = 7, LeaseSeconds = 42, Metrics = ["bleu", "rouge"], RequiredDevice = "cuda", ArtifactRetention = "all",
        };
        await Store.SaveSweepAsync(sweep, [Cell("c")]);
        Assert.Equal(sweep, await Store.FindSweepAsync(K("s")));
        Assert.NotEqual(sweep, (await Store.FindSweepAsync(K("s")))! with { ArtifactRetention = "none" });
        Assert.Contains(await Store.GetSweepsAsync(SweepStatus.Active), s => s.SweepId == K("s"));

        await Store.SetSweepStatusAsync(K("s"), SweepStatus.Cancelled);
        Assert.Equal(SweepStatus.Cancelled, (await Store.FindSweepAsync(K("s")))!.Status);
        Assert.DoesNotContain(await Store.GetSweepsAsync(SweepStatus.Active), s => s.SweepId == K("s"));
        Assert.Contains(await Store.GetSweepsAsync(SweepStatus.Cancelled), s => s.SweepId == K("s"));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.SetSweepStatusAsync(K("s"), "paused"));
    }

    [Fact]
    public async Task Unfinished_cells_carry_recorded_attempts_and_the_last_failure()
    {
        await Store.SaveSweepAsync(Sweep("s", "n", T0, 3), [Cell("done"), Cell("failed"), Cell("fresh")]);
        await Store.BeginAttemptAsync(K("fresh"), limit: 3);
        await Store.BeginAttemptAsync(K("fresh"), limit: 3);
        await Store.BeginAttemptAsync(K("failed"), limit: 3);
        await Store.UpsertResultAsync(Result("done", attempt: 1));
        await Store.UpsertResultAsync(Result("failed", attempt: 2) with { Status = CellStatus.Failed, Error = "NaN loss at step 3" });

        var unfinished = (await Store.GetUnfinishedCellsAsync(K("s"))).ToDictionary(c => c.CellKey);
        Assert.Equal([K("failed"), K("fresh")], unfinished.Keys.Order());
        Assert.Equal((2, "NaN loss at step 3"), (unfinished[K("failed")].Attempts, unfinished[K("failed")].LastError));
        Assert.Equal((2, (string?)null, 3), (unfinished[K("fresh")].Attempts, unfinished[K("fresh")].LastError, unfinished[K("fresh")].AttemptLimit));
        Assert.False(string.IsNullOrEmpty(unfinished[K("fresh")].CellJson));
    }

    protected string K(string name) => $"{P}-{name}";

    protected SweepRecord Sweep(string id, string name, DateTimeOffset submittedAt, int cellCount) =>
        new(K(id), $"{P}-{name}", $"name: {name}\n", $"sha256:{id}", submittedAt, cellCount);

    protected CellDescriptor Cell(string key, string dataset = "mnist", int size = 1) =>
        new(K(key), dataset, "train", "mlp", size, 100, 7, $$"""{"cell":"{{key}}"}""");

    protected CellResultRecord Result(
        string key, int attempt, string status = CellStatus.Succeeded, string? error = null,
        Dictionary<string, double>? metrics = null, string[]? outputs = null) =>
        new(K(key), attempt, status, metrics ?? new() { ["acc"] = 0.5, ["loss"] = 1.25 }, error,
            $"worker-{attempt}", "cuda:0", 12.5 + attempt, 1L << 33, $$"""{"git":"abc","attempt":{{attempt}}}""",
            outputs ?? [$"runs/{key}/model.bin"], T0.AddMinutes(attempt).AddTicks(1234567));

    private static void AssertSameResult(CellResultRecord expected, CellResultRecord? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.CellKey, actual.CellKey);
        Assert.Equal(expected.Attempt, actual.Attempt);
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.Error, actual.Error);
        Assert.Equal(expected.WorkerId, actual.WorkerId);
        Assert.Equal(expected.Device, actual.Device);
        Assert.Equal(expected.WallSeconds, actual.WallSeconds);
        Assert.Equal(expected.PeakMemoryBytes, actual.PeakMemoryBytes);
        Assert.Equal(expected.ProvenanceJson, actual.ProvenanceJson);
        Assert.Equal(expected.Outputs, actual.Outputs);
        Assert.Equal(expected.FinishedAt.AddTicks(-(expected.FinishedAt.Ticks % 10)), actual.FinishedAt); // microseconds
        Assert.Equal(expected.Metrics.Keys.Order(StringComparer.Ordinal), actual.Metrics.Keys);
        foreach (var (metric, value) in expected.Metrics)
        {
            Assert.Equal(value, actual.Metrics[metric]); // NaN equals NaN for Assert.Equal(double, double)
        }
    }

    protected Task<long> CountAsync(string sql, string? parameter = null) => CountInAsync(Location, sql, parameter);

    protected async Task<long> CountInAsync(string location, string sql, string? parameter = null) =>
        Convert.ToInt64(await ScalarAsync(sql, location, parameter), CultureInfo.InvariantCulture);

    private async Task<double> ScalarDoubleAsync(string sql, string parameter) =>
        Convert.ToDouble(await ScalarAsync(sql, Location, parameter), CultureInfo.InvariantCulture);

    private async Task<object?> ScalarAsync(string sql, string location, string? parameter)
    {
        await using var connection = CreateRawConnection(location);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        if (parameter is not null)
        {
            var p = command.CreateParameter();
            p.ParameterName = "k";
            p.Value = parameter;
            command.Parameters.Add(p);
        }

        return await command.ExecuteScalarAsync();
    }

    protected async Task ExecuteAsync(string sql, string location)
    {
        await using var connection = CreateRawConnection(location);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
