using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Orchestrator.Results;

/// <summary>
/// Per-connection SQLite settings, run whenever EF opens a connection. WAL mode itself is persistent in the file and
/// is switched on by <see cref="ResultStore.EnsureSchemaAsync"/>; the busy timeout lets a worker and the CLI share it.
/// </summary>
internal sealed class SqliteConnectionSetup : DbConnectionInterceptor
{
    public static readonly SqliteConnectionSetup Instance = new();

    private const string Pragmas = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        command.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(
        DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
