using System.Data.Common;
using Npgsql;
using Orchestrator.TestKit;

namespace Orchestrator.Results.Tests;

/// <summary>The store contract on a real PostgreSQL database (one per class) from the shared throwaway server.</summary>
[Collection(PostgresServer.CollectionName)]
public sealed class PostgresResultStoreTests(PostgresServer server) : ResultStoreContract
{
    protected override Task<string> SharedDatabaseAsync() => server.DatabaseForAsync(GetType());

    protected override Task<string> NewDatabaseAsync() => server.CreateDatabaseAsync("results_fresh");

    protected override IResultStore CreateStore(string location) => ResultStores.Postgres(location);

    protected override DbConnection CreateRawConnection(string location) => new NpgsqlConnection(location);

    [Fact]
    public async Task Timestamps_are_timestamptz_and_metrics_are_double_precision()
    {
        Assert.Equal(1, await CountAsync(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'cell_results' AND column_name = 'finished_at' AND data_type = 'timestamp with time zone'"));
        Assert.Equal(1, await CountAsync(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'cell_metrics' AND column_name = 'value' AND data_type = 'double precision'"));
    }

    [Fact]
    public async Task A_runtime_role_with_only_DML_rights_can_use_a_migrated_database_but_not_create_one()
    {
        var migrated = await server.CreateDatabaseAsync("runtime_role");
        await using (var admin = ResultStores.Postgres(migrated))
        {
            await admin.EnsureSchemaAsync();
        }

        var role = "orch_runtime_" + P;
        await using (var connection = new NpgsqlConnection(migrated))
        {
            await connection.OpenAsync();
            foreach (var sql in new[]
                     {
                         $"CREATE ROLE {role} LOGIN",
                         $"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                         $"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                     })
            {
                await using var command = new NpgsqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync();
            }
        }

        var asRuntime = new NpgsqlConnectionStringBuilder(migrated) { Username = role }.ConnectionString;
        var store = Open(asRuntime);
        await ResultStores.RequireSchemaAsync(store);
        await store.SaveSweepAsync(Sweep("s", "n", DateTimeOffset.UtcNow, 1), [Cell("c")]);
        Assert.Equal(1, await store.BeginAttemptAsync(K("c"), limit: 1));
        Assert.True(await store.UpsertResultAsync(Result("c", attempt: 1)));
        Assert.Single(await store.GetSweepCellsAsync(K("s")));

        // The same role cannot create the schema in an empty database: that is `orchestrator db migrate`'s job.
        var empty = await server.CreateDatabaseAsync("runtime_role_empty");
        await using (var connection = new NpgsqlConnection(empty))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("REVOKE CREATE ON SCHEMA public FROM PUBLIC", connection);
            await command.ExecuteNonQueryAsync();
        }

        var denied = Open(new NpgsqlConnectionStringBuilder(empty) { Username = role }.ConnectionString);
        var ex = await Assert.ThrowsAnyAsync<PostgresException>(() => denied.EnsureSchemaAsync());
        Assert.Equal("42501", ex.SqlState);   // insufficient_privilege
    }
}
