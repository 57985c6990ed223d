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
}
