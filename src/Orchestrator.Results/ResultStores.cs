namespace Orchestrator.Results;

/// <summary>Factories for <see cref="IResultStore"/>. Call <see cref="IResultStore.EnsureSchemaAsync"/> before first use.</summary>
public static class ResultStores
{
    /// <summary>The schema version this build expects (the highest migration it knows).</summary>
    public static int SchemaVersion => ResultSchema.LatestVersion;

    /// <summary>
    /// Fails with a clear message unless the database has exactly this build's schema. Used by silos in cluster
    /// mode, whose runtime database role has no DDL rights: the schema is applied by <c>orchestrator db migrate</c>.
    /// </summary>
    public static async Task RequireSchemaAsync(IResultStore store, CancellationToken ct = default)
    {
        var version = await store.GetSchemaVersionAsync(ct).ConfigureAwait(false);
        if (version != SchemaVersion)
        {
            throw new InvalidOperationException(version < SchemaVersion
                ? $"the database schema is at version {version}, this build needs {SchemaVersion}: run `orchestrator db migrate --cluster <connection string>` with a role that may create tables"
                : $"the database schema is at version {version}, newer than this build's {SchemaVersion}: upgrade this program");
        }
    }

    /// <summary>
    /// An embedded store in a SQLite file (created, with its directory, when missing). WAL journal mode and a busy
    /// timeout let several processes (a worker and the CLI) share the file.
    /// </summary>
    public static IResultStore Sqlite(string filePath) => ResultStore.ForSqlite(filePath);

    /// <summary>A store in a PostgreSQL database (Npgsql connection string); the database must exist.</summary>
    public static IResultStore Postgres(string connectionString) => ResultStore.ForPostgres(connectionString);
}
