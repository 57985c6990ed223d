using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.Results.Tests;

[Collection(PostgresServer.CollectionName)]
public sealed class PostgresServerTests(PostgresServer server, ITestOutputHelper output)
{
    private sealed class FirstClass;

    private sealed class SecondClass;

    [Fact]
    public async Task Fixture_starts_a_server_that_answers_select_version()
    {
        await using var connection = new NpgsqlConnection(server.AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT version()", connection);
        var version = (string?)await command.ExecuteScalarAsync();

        Assert.NotNull(version);
        Assert.StartsWith("PostgreSQL", version);
        Assert.True(server.IsRunning);
        Assert.True(Directory.Exists(server.DataDirectory));
        output.WriteLine($"{version}; port {server.Port}; dir {server.RootDirectory}; started in {server.StartupDuration.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Two_classes_get_different_databases_and_each_class_keeps_its_own()
    {
        var first = await server.DatabaseForAsync(typeof(FirstClass));
        var second = await server.DatabaseForAsync(typeof(SecondClass));
        var firstAgain = await server.DatabaseForAsync(typeof(FirstClass));

        Assert.NotEqual(first, second);
        Assert.Equal(first, firstAgain);

        await ExecuteAsync(first, "CREATE TABLE only_in_first (id int)");
        Assert.Equal(1L, await ScalarAsync(first, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'"));
        Assert.Equal(0L, await ScalarAsync(second, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'"));
        Assert.NotEqual(await ScalarAsync(first, "SELECT current_database()"), await ScalarAsync(second, "SELECT current_database()"));
    }

    [Fact]
    public async Task CreateDatabase_sanitises_the_name_and_makes_it_unique()
    {
        var a = await server.CreateDatabaseAsync("My Weird-Name!");
        var b = await server.CreateDatabaseAsync("My Weird-Name!");

        var nameA = (string)(await ScalarAsync(a, "SELECT current_database()"))!;
        var nameB = (string)(await ScalarAsync(b, "SELECT current_database()"))!;
        Assert.Matches("^my_weird_name_[0-9]+$", nameA);
        Assert.Matches("^my_weird_name_[0-9]+$", nameB);
        Assert.NotEqual(nameA, nameB);
        Assert.Equal(server.ConnectionString(nameA), a);
    }

    [Fact]
    public async Task After_disposal_the_directory_is_gone_and_the_port_refuses_connections()
    {
        var own = new PostgresServer();
        int port;
        string root;
        try
        {
            await own.InitializeAsync();
            port = own.Port;
            root = own.RootDirectory;
            Assert.NotEqual(server.Port, port);
            Assert.Contains($"{PostgresServer.DirectoryPrefix}{Environment.ProcessId}-", root);
            var db = await own.CreateDatabaseAsync("probe");
            Assert.Equal(1, await ScalarAsync(db, "SELECT 1"));
        }
        finally
        {
            await own.DisposeAsync();
        }

        output.WriteLine($"separate server: start {own.StartupDuration.TotalMilliseconds:F0} ms, stop+delete {own.StopDuration.TotalMilliseconds:F0} ms");
        Assert.False(own.IsRunning);
        Assert.False(Directory.Exists(root));

        using var tcp = new TcpClient();
        var refused = await Assert.ThrowsAsync<SocketException>(() => tcp.ConnectAsync(PostgresServer.Host, port));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        var cs = new NpgsqlConnectionStringBuilder(own.AdminConnectionString) { Pooling = false, Timeout = 5 }.ConnectionString;
        await using var connection = new NpgsqlConnection(cs);
        await Assert.ThrowsAsync<NpgsqlException>(() => connection.OpenAsync());

        // Disposing twice is harmless.
        await own.DisposeAsync();
    }

    [Fact]
    public async Task Start_removes_stale_directories_of_dead_test_hosts_but_not_of_live_ones()
    {
        var parent = Path.GetDirectoryName(server.RootDirectory)!;
        var deadPid = DeadPid();
        var stale = Path.Combine(parent, $"{PostgresServer.DirectoryPrefix}{deadPid}-deadbeef");
        Directory.CreateDirectory(Path.Combine(stale, "data"));
        await File.WriteAllTextAsync(Path.Combine(stale, "data", "PG_VERSION"), "15");

        var own = new PostgresServer();
        try
        {
            await own.InitializeAsync();
            Assert.False(Directory.Exists(stale));
            Assert.True(Directory.Exists(server.RootDirectory)); // ours: this process is alive
        }
        finally
        {
            await own.DisposeAsync();
            if (Directory.Exists(stale))
            {
                Directory.Delete(stale, recursive: true);
            }
        }
    }

    [Fact]
    public async Task Missing_binaries_fail_with_a_message_naming_the_postgresql_package()
    {
        var empty = Directory.CreateTempSubdirectory("orch-no-pg-").FullName;
        var previous = Environment.GetEnvironmentVariable(PostgresBinaries.BinDirEnvironmentVariable);
        Environment.SetEnvironmentVariable(PostgresBinaries.BinDirEnvironmentVariable, empty);
        try
        {
            var own = new PostgresServer();
            var ex = await Assert.ThrowsAsync<PostgresBinariesNotFoundException>(own.InitializeAsync);
            await own.DisposeAsync();

            output.WriteLine(ex.Message);
            Assert.Contains("initdb, pg_ctl", ex.Message);
            Assert.Contains("'postgresql'", ex.Message);
            Assert.Contains("apt-get install -y postgresql", ex.Message);
            Assert.Contains(PostgresBinaries.BinDirEnvironmentVariable, ex.Message);
            Assert.Contains(empty, ex.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(PostgresBinaries.BinDirEnvironmentVariable, previous);
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public void Binaries_are_found_without_configuration()
    {
        if (Environment.GetEnvironmentVariable(PostgresBinaries.BinDirEnvironmentVariable) is { Length: > 0 })
        {
            return; // explicitly configured: nothing to discover
        }

        var dir = PostgresBinaries.Locate();
        Assert.True(PostgresBinaries.HasServerBinaries(dir));
        Assert.Equal(server.BinDirectory, dir);
    }

    private static int DeadPid()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
