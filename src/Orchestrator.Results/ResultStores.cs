namespace Orchestrator.Results;

/// <summary>Factories for <see cref="IResultStore"/>. Call <see cref="IResultStore.EnsureSchemaAsync"/> before first use.</summary>
public static class ResultStores
{
    /// <summary>
    /// An embedded store in a SQLite file (created, with its directory, when missing). WAL journal mode and a busy
    /// timeout let several processes (a worker and the CLI) share the file.
    /// </summary>
    public static IResultStore Sqlite(string filePath) => ResultStore.ForSqlite(filePath);

    /// <summary>A store in a PostgreSQL database (Npgsql connection string); the database must exist.</summary>
    public static IResultStore Postgres(string connectionString) => ResultStore.ForPostgres(connectionString);
}
