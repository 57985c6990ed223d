using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Orchestrator.Results.Tests;

/// <summary>The store contract on an embedded SQLite file in a temporary directory.</summary>
public sealed class SqliteResultStoreTests : ResultStoreContract
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"orch-results-tests-{Environment.ProcessId}-{Guid.NewGuid():N}");

    protected override Task<string> SharedDatabaseAsync() =>
        Task.FromResult(Path.Combine(_root, "nested", "dir", "results.db")); // directories do not exist yet

    protected override Task<string> NewDatabaseAsync() =>
        Task.FromResult(Path.Combine(_root, $"fresh-{Guid.NewGuid():N}.db"));

    protected override IResultStore CreateStore(string location) => ResultStores.Sqlite(location);

    protected override DbConnection CreateRawConnection(string location) =>
        new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = location, Pooling = false }.ToString());

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void The_file_and_its_missing_directories_are_created()
    {
        Assert.True(File.Exists(Location));
    }

    [Fact]
    public async Task The_file_uses_WAL_journal_mode()
    {
        await using var connection = CreateRawConnection(Location);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_reader_is_not_blocked_while_another_connection_holds_the_write_lock()
    {
        await Store.UpsertResultAsync(Result("before", 1));
        await using var writer = CreateRawConnection(Location);
        await writer.OpenAsync();
        await using var tx = await writer.BeginTransactionAsync(); // BEGIN IMMEDIATE: holds the write lock
        await using (var insert = writer.CreateCommand())
        {
            insert.Transaction = tx;
            insert.CommandText = "DELETE FROM cell_metrics WHERE 1 = 0";
            await insert.ExecuteNonQueryAsync();
        }

        var succeeded = await Store.GetSucceededKeysAsync([K("before")]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Single(succeeded);
        await tx.RollbackAsync();
    }

    [Fact]
    public async Task A_writer_waits_for_the_lock_instead_of_failing()
    {
        await using var other = CreateRawConnection(Location);
        await other.OpenAsync();
        var tx = await other.BeginTransactionAsync();
        var pending = Store.UpsertResultAsync(Result("waits", 1));
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        await tx.CommitAsync();
        await tx.DisposeAsync();

        Assert.True(await pending.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
