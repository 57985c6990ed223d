using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;
using Xunit;

namespace Orchestrator.TestKit;

/// <summary>
/// A throwaway PostgreSQL server for tests: <c>initdb</c> into a fresh temporary directory, <c>pg_ctl start</c> on a
/// free loopback port with durability switched off, <c>pg_ctl stop -m immediate</c> and delete on disposal.
/// </summary>
/// <remarks>
/// <para>Share one server per test collection: xunit only discovers collection definitions in the test assembly itself,
/// so each test project adds this definition once:</para>
/// <code>
/// [CollectionDefinition(PostgresServer.CollectionName)]
/// public sealed class PostgresCollection : PostgresCollectionDefinition;
/// </code>
/// <para>and marks its classes <c>[Collection(PostgresServer.CollectionName)]</c>, taking a <see cref="PostgresServer"/>
/// constructor parameter. Each class then asks for its own database with <see cref="DatabaseForAsync"/>.</para>
/// <para>When the binaries are missing, <see cref="InitializeAsync"/> throws <see cref="PostgresBinariesNotFoundException"/>:
/// tests fail, they never skip. As root, the binaries run as the <c>postgres</c> OS user via <c>runuser</c>.</para>
/// </remarks>
public sealed class PostgresServer : IAsyncLifetime
{
    /// <summary>The collection name to use with <c>[CollectionDefinition]</c> and <c>[Collection]</c>.</summary>
    public const string CollectionName = "postgres";

    /// <summary>The loopback address the server listens on.</summary>
    public const string Host = "127.0.0.1";

    /// <summary>The superuser name (authentication is <c>trust</c>, no password).</summary>
    public const string Username = "postgres";

    /// <summary>Prefix of the temporary directories; the test host's PID follows it.</summary>
    public const string DirectoryPrefix = "orch-pg-";

    /// <summary>Optional environment variable: parent directory for the temporary directories (default: the temp path).</summary>
    public const string TempDirEnvironmentVariable = "ORCHESTRATOR_PG_TMPDIR";

    private static readonly TimeSpan InitDbTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan PgCtlTimeout = TimeSpan.FromSeconds(90);

    private readonly ConcurrentDictionary<Type, Lazy<Task<string>>> _classDatabases = new();
    private readonly ConcurrentDictionary<string, byte> _issuedConnectionStrings = new();
    private readonly SemaphoreSlim _createDatabaseLock = new(1, 1);
    private readonly object _stopLock = new();
    private EventHandler? _processExitHandler;
    private int _databaseCounter;
    private int _state; // 0 = new, 1 = starting/running, 2 = stopped
    private bool _runAsPostgresUser;

    /// <summary>Directory holding initdb and pg_ctl.</summary>
    public string BinDirectory { get; private set; } = "";

    /// <summary>The temporary directory of this server (data directory, log, unix socket).</summary>
    public string RootDirectory { get; private set; } = "";

    /// <summary>The cluster's data directory.</summary>
    public string DataDirectory => Path.Combine(RootDirectory, "data");

    /// <summary>The server log (<c>pg_ctl -l</c>).</summary>
    public string LogFile => Path.Combine(RootDirectory, "postgres.log");

    /// <summary>The TCP port on <see cref="Host"/>.</summary>
    public int Port { get; private set; }

    /// <summary>Time <see cref="InitializeAsync"/> took (locate, clean up stale directories, initdb, start).</summary>
    public TimeSpan StartupDuration { get; private set; }

    /// <summary>Time the last stop (pg_ctl stop and delete) took.</summary>
    public TimeSpan StopDuration { get; private set; }

    /// <summary>True between a successful start and disposal.</summary>
    public bool IsRunning => Volatile.Read(ref _state) == 1 && Port != 0;

    /// <summary>Connection string for the built-in <c>postgres</c> database.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    /// <summary>Connection string (superuser, trust authentication) for <paramref name="database"/> on this server.</summary>
    public string ConnectionString(string database)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(database);
        if (Port == 0)
        {
            throw new InvalidOperationException("The PostgreSQL server has not been started (call InitializeAsync).");
        }

        var cs = new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Username = Username,
            Database = database,
            IncludeErrorDetail = true,
            Timeout = 30,
        }.ConnectionString;
        _issuedConnectionStrings.TryAdd(cs, 0);
        return cs;
    }

    /// <summary>Creates a new, empty database and returns its connection string. The name is sanitised and made unique.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        if (!IsRunning)
        {
            throw new InvalidOperationException("The PostgreSQL server is not running.");
        }

        var database = $"{Sanitize(name)}_{Interlocked.Increment(ref _databaseCounter)}";
        await _createDatabaseLock.WaitAsync().ConfigureAwait(false);
        try
        {
            var admin = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false }.ConnectionString;
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        finally
        {
            _createDatabaseLock.Release();
        }

        return ConnectionString(database);
    }

    /// <summary>The database of <paramref name="testClass"/>: created on first request, then the same connection string.</summary>
    public Task<string> DatabaseForAsync(Type testClass)
    {
        ArgumentNullException.ThrowIfNull(testClass);
        return _classDatabases.GetOrAdd(testClass, t => new Lazy<Task<string>>(() => CreateDatabaseAsync(t.Name))).Value;
    }

    /// <summary>Starts the server. Throws <see cref="PostgresBinariesNotFoundException"/> when PostgreSQL is not installed.</summary>
    public async Task InitializeAsync()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("A PostgresServer can be started only once.");
        }

        var stopwatch = Stopwatch.StartNew();
        BinDirectory = PostgresBinaries.Locate();
        _runAsPostgresUser = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);
        if (_runAsPostgresUser && !OsUserExists("postgres"))
        {
            throw new InvalidOperationException(
                "Running as root, but PostgreSQL refuses to run as root and there is no 'postgres' OS user to run it as " +
                "(via runuser -u postgres). Install the Debian/Ubuntu package 'postgresql' (apt-get install -y postgresql), " +
                "which creates that user, or create it (useradd --system postgres), or run the tests as a non-root user.");
        }

        var parent = ParentDirectory();
        CleanUpStaleDirectories(parent);

        RootDirectory = Path.Combine(parent, $"{DirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(RootDirectory);
        if (_runAsPostgresUser && !OperatingSystem.IsWindows())
        {
            // initdb and the postmaster run as 'postgres': they create data/, the log and the socket in here.
            File.SetUnixFileMode(RootDirectory, (UnixFileMode)0b111_111_111);
        }

        _processExitHandler = (_, _) => Stop();
        AppDomain.CurrentDomain.ProcessExit += _processExitHandler;

        try
        {
            await InitDbAsync().ConfigureAwait(false);
            await StartAsync().ConfigureAwait(false);
        }
        catch
        {
            Stop();
            throw;
        }

        StartupDuration = stopwatch.Elapsed;
    }

    /// <summary>Stops the server (<c>pg_ctl stop -m immediate</c>) and deletes its directory.</summary>
    public Task DisposeAsync()
    {
        Stop();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops the server as a crash would (<c>pg_ctl stop -m immediate</c>), waits <paramref name="downtime"/>, and starts
    /// it again on the same port with the same data — for tests of what survives a database restart.
    /// </summary>
    public async Task RestartAsync(TimeSpan downtime)
    {
        var stop = await RunPgAsync("pg_ctl", PgCtlTimeout, "-D", DataDirectory, "-m", "immediate", "-w", "stop").ConfigureAwait(false);
        if (stop.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_ctl stop failed (exit code {stop.ExitCode}):{Environment.NewLine}{Tail(stop.Output)}");
        }

        await Task.Delay(downtime).ConfigureAwait(false);
        var start = await RunPgAsync("pg_ctl", PgCtlTimeout,
            "-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", ServerOptions(Port), "start").ConfigureAwait(false);
        if (start.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"pg_ctl start after restart failed (exit code {start.ExitCode}):{Environment.NewLine}{Tail(start.Output)}{Environment.NewLine}{ReadLogTail()}");
        }
    }

    private string ServerOptions(int port) => string.Join(' ',
        "-c listen_addresses=" + Host,
        "-p " + port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "-k " + RootDirectory,
        "-c fsync=off",
        // Commits are written to the WAL (the OS cache) before they are acknowledged: cheap with fsync off, and a
        // killed server (RestartAsync) loses nothing it acknowledged, as with a production configuration.
        "-c synchronous_commit=on",
        "-c full_page_writes=off",
        "-c max_connections=300");

    private async Task InitDbAsync()
    {
        var result = await RunPgAsync("initdb", InitDbTimeout,
            "-D", DataDirectory, "-U", Username, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"initdb failed (exit code {result.ExitCode}{(result.TimedOut ? ", timed out" : "")}) in '{DataDirectory}':{Environment.NewLine}{Tail(result.Output)}");
        }
    }

    private async Task StartAsync()
    {
        const int attempts = 5;
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeLoopbackPort();
            var options = ServerOptions(port);

            // pg_ctl redirects the postmaster to the log (-l); we only wait for pg_ctl itself to exit.
            var result = await RunPgAsync("pg_ctl", PgCtlTimeout,
                "-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", options, "start").ConfigureAwait(false);
            if (result.ExitCode == 0)
            {
                Port = port;
                break;
            }

            var log = ReadLogTail();
            var portTaken = log.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
                            || log.Contains("already in use", StringComparison.OrdinalIgnoreCase);
            if (portTaken && attempt < attempts)
            {
                continue; // somebody took the port between our probe and the bind: try another
            }

            throw new InvalidOperationException(
                $"pg_ctl start failed (exit code {result.ExitCode}{(result.TimedOut ? ", timed out" : "")}, port {port}).{Environment.NewLine}" +
                $"pg_ctl output:{Environment.NewLine}{Tail(result.Output)}{Environment.NewLine}" +
                $"Server log ({LogFile}):{Environment.NewLine}{log}");
        }

        try
        {
            var cs = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false }.ConnectionString;
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException(
                $"PostgreSQL started on port {Port} but does not accept connections: {ex.Message}{Environment.NewLine}" +
                $"Server log ({LogFile}):{Environment.NewLine}{ReadLogTail()}", ex);
        }
    }

    private void Stop()
    {
        lock (_stopLock)
        {
            if (Interlocked.Exchange(ref _state, 2) == 2)
            {
                return;
            }

            var stopwatch = Stopwatch.StartNew();
            if (_processExitHandler is not null)
            {
                AppDomain.CurrentDomain.ProcessExit -= _processExitHandler;
                _processExitHandler = null;
            }

            foreach (var cs in _issuedConnectionStrings.Keys)
            {
                try
                {
                    using var c = new NpgsqlConnection(cs);
                    NpgsqlConnection.ClearPool(c);
                }
                catch (Exception)
                {
                    // best effort
                }
            }

            if (RootDirectory.Length > 0)
            {
                if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
                {
                    StopPostmaster(DataDirectory);
                }

                DeleteDirectory(RootDirectory);
            }

            StopDuration = stopwatch.Elapsed;
        }
    }

    private void StopPostmaster(string dataDirectory)
    {
        try
        {
            var (file, args) = PgCommand(Path.Combine(BinDirectory, "pg_ctl"),
                ["-D", dataDirectory, "-m", "immediate", "-w", "-t", "30", "stop"]);
            ProcessRunner.Run(file, args, PgCtlTimeout);
        }
        catch (Exception)
        {
            // best effort: the directory is deleted anyway
        }
    }

    private void CleanUpStaleDirectories(string parent)
    {
        string[] candidates;
        try
        {
            candidates = Directory.GetDirectories(parent, DirectoryPrefix + "*");
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        foreach (var dir in candidates)
        {
            var name = Path.GetFileName(dir);
            var pidText = name[DirectoryPrefix.Length..].Split('-')[0];
            if (!int.TryParse(pidText, out var pid) || pid == Environment.ProcessId || ProcessIsAlive(pid))
            {
                continue;
            }

            var data = Path.Combine(dir, "data");
            if (File.Exists(Path.Combine(data, "postmaster.pid")))
            {
                StopPostmaster(data); // its test host died without stopping it
            }

            DeleteDirectory(dir);
        }
    }

    private async Task<ProcessResult> RunPgAsync(string program, TimeSpan timeout, params string[] arguments)
    {
        var (file, args) = PgCommand(Path.Combine(BinDirectory, program), arguments);
        try
        {
            return await ProcessRunner.RunAsync(file, args, timeout).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"Could not run '{file}' ({ex.Message}). " +
                (_runAsPostgresUser ? "As root, the PostgreSQL binaries are run through 'runuser -u postgres --' (package util-linux)." : ""),
                ex);
        }
    }

    private (string File, IReadOnlyList<string> Args) PgCommand(string program, IReadOnlyList<string> arguments) =>
        _runAsPostgresUser
            ? ("runuser", ["-u", "postgres", "--", program, .. arguments])
            : (program, arguments);

    private string ReadLogTail()
    {
        try
        {
            return File.Exists(LogFile) ? Tail(File.ReadAllText(LogFile)) : "(no log file)";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"(log unreadable: {ex.Message})";
        }
    }

    private static string Tail(string text, int lines = 40)
    {
        var all = text.Split('\n');
        var sb = new StringBuilder();
        foreach (var line in all.Skip(Math.Max(0, all.Length - lines)))
        {
            sb.Append(line.TrimEnd('\r')).Append('\n');
        }

        return sb.ToString().TrimEnd();
    }

    private static string ParentDirectory()
    {
        var configured = Environment.GetEnvironmentVariable(TempDirEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Directory.CreateDirectory(configured);
            return Path.GetFullPath(configured);
        }

        // The unix socket path (<dir>/.s.PGSQL.<port>) must stay under ~107 bytes.
        var temp = Path.GetTempPath();
        return temp.Length <= 60 ? temp : "/tmp";
    }

    private static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static bool ProcessIsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static bool OsUserExists(string user)
    {
        try
        {
            if (File.ReadLines("/etc/passwd").Any(l => l.StartsWith(user + ":", StringComparison.Ordinal)))
            {
                return true;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        try
        {
            return ProcessRunner.Run("id", ["-u", user], TimeSpan.FromSeconds(10)).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static void DeleteDirectory(string dir)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }

                return;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Thread.Sleep(50 * (attempt + 1));
            }
        }
    }

    private static string Sanitize(string name)
    {
        var sb = new StringBuilder();
        foreach (var ch in name.ToLowerInvariant())
        {
            var ok = ch is >= 'a' and <= 'z' or >= '0' and <= '9';
            if (ok)
            {
                sb.Append(ch);
            }
            else if (sb.Length > 0 && sb[^1] != '_')
            {
                sb.Append('_');
            }
        }

        var s = sb.ToString().Trim('_');
        if (s.Length == 0)
        {
            s = "db";
        }

        if (char.IsAsciiDigit(s[0]))
        {
            s = "db_" + s;
        }

        return s.Length > 48 ? s[..48].TrimEnd('_') : s;
    }
}

/// <summary>
/// Base for the <c>[CollectionDefinition]</c> that shares one <see cref="PostgresServer"/> across a test collection.
/// xunit only discovers collection definitions in the test assembly, so each test project declares:
/// <code>
/// [CollectionDefinition(PostgresServer.CollectionName)]
/// public sealed class PostgresCollection : PostgresCollectionDefinition;
/// </code>
/// </summary>
public abstract class PostgresCollectionDefinition : ICollectionFixture<PostgresServer>;
