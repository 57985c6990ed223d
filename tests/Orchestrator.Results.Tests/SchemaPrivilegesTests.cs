using Npgsql;
using Orchestrator.TestKit;

namespace Orchestrator.Results.Tests;

/// <summary>
/// The runtime role of a deployment (DML on every table the owner creates, as deploy/k8s/postgres/init-runtime-role.sh
/// grants it) cannot change <c>orleansquery</c> or <c>schema_migrations</c> once <c>db migrate</c> has run, on real PostgreSQL.
/// </summary>
[Collection(PostgresServer.CollectionName)]
public sealed class SchemaPrivilegesTests(PostgresServer server)
{
    private readonly string _role = "orch_rt_" + Guid.NewGuid().ToString("N")[..8];

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<string> DeploymentAsync()
    {
        var owner = await server.CreateDatabaseAsync("privileges");
        // As the deployments set it up: the runtime role gets DML on every table the owner creates from now on.
        await ExecuteAsync(owner, $"""
            CREATE ROLE {_role} LOGIN;
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            GRANT USAGE ON SCHEMA public TO {_role};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {_role};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {_role};
            """);
        await using var store = ResultStores.Postgres(owner);
        await store.EnsureSchemaAsync();
        return owner;
    }

    private string AsRuntime(string owner) => new NpgsqlConnectionStringBuilder(owner) { Username = _role }.ConnectionString;

    [Theory]
    [InlineData("UPDATE orleansquery SET querytext = 'SELECT 1'")]
    [InlineData("DELETE FROM orleansquery")]
    [InlineData("INSERT INTO orleansquery (querykey, querytext) VALUES ('x', 'SELECT 1')")]
    [InlineData("TRUNCATE orleansquery")]
    [InlineData("UPDATE schema_migrations SET version = version + 100")]
    [InlineData("DELETE FROM schema_migrations")]
    [InlineData("INSERT INTO schema_migrations (version, applied_at) VALUES (999, now())")]
    public async Task The_runtime_role_cannot_change_the_schema_bookkeeping(string sql)
    {
        var owner = await DeploymentAsync();
        var ex = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(AsRuntime(owner), sql));
        Assert.Equal("42501", ex.SqlState); // insufficient_privilege
    }

    [Fact]
    public async Task The_runtime_role_still_reads_them_and_writes_results_and_a_later_migrate_takes_back_a_new_grant()
    {
        var owner = await DeploymentAsync();
        var runtime = AsRuntime(owner);
        await using (var store = ResultStores.Postgres(runtime))
        {
            await ResultStores.RequireSchemaAsync(store);
            await store.SaveSweepAsync(new SweepRecord("s", "n", "name: n", "h", DateTimeOffset.UtcNow, 1), [new CellDescriptor("c", "d", "default", "lora", 10, 0, 0, "{}")]);
            Assert.Single(await store.GetSweepCellsAsync("s"));
        }

        await ExecuteAsync(runtime, "SELECT count(*) FROM orleansquery");

        // Someone grants everything again by hand; the next `db migrate` (schema already current) revokes it.
        await ExecuteAsync(owner, $"GRANT ALL ON ALL TABLES IN SCHEMA public TO {_role}");
        await ExecuteAsync(runtime, "UPDATE schema_migrations SET applied_at = applied_at");
        await using (var store = ResultStores.Postgres(owner))
        {
            await store.EnsureSchemaAsync();
        }

        var ex = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(runtime, "UPDATE schema_migrations SET applied_at = applied_at"));
        Assert.Equal("42501", ex.SqlState);
    }
}
