using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orchestrator.Abstractions;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.TestKit;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>A real silo process (<c>Orchestrator.Silo</c>) on loopback, with its output kept for diagnostics.</summary>
public sealed class SiloProcess : IDisposable
{
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SiloProcess(string name, string siloDll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        Name = name;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(siloDll);
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["ORCHESTRATOR_TORCH_THREADS"] = "1";
        foreach (var (variable, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[variable] = value;
        }

        Process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + name);
        Process.OutputDataReceived += (_, e) => OnLine(e.Data);
        Process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
        Process.EnableRaisingEvents = true;
        Process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"{name} exited (code {Process.ExitCode}) before it was ready:\n{Log}"));
    }

    public string Name { get; }

    public Process Process { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public Task Ready => _ready.Task;

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }

        if (line.StartsWith("Silo ready", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    /// <summary>SIGKILL: the process gets no chance to clean up, as in a crash.</summary>
    public void Kill()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        Process.Dispose();
    }
}

/// <summary>
/// A cluster of real processes for one test: a fresh database on the shared throwaway PostgreSQL, the schema
/// migration, silo processes started from the Orchestrator.Silo build, and an Orleans client. Every test gets
/// its own cluster id, so stale membership rows never slow a start.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<SiloProcess> _silos = [];
    private IHost? _client;

    private LocalCluster(PostgresServer postgres, string connectionString, string clusterId)
    {
        Postgres = postgres;
        ConnectionString = connectionString;
        ClusterId = clusterId;
        Store = ResultStores.Postgres(connectionString);
    }

    public PostgresServer Postgres { get; }

    public string ConnectionString { get; }

    public string ClusterId { get; }

    public IResultStore Store { get; }

    public IReadOnlyList<SiloProcess> Silos => _silos;

    public IGrainFactory Grains => (_client ?? throw new InvalidOperationException("client not connected")).Services.GetRequiredService<IGrainFactory>();

    public static async Task<LocalCluster> CreateAsync(PostgresServer postgres, string name)
    {
        var connection = await postgres.CreateDatabaseAsync(name);
        var id = $"{name}-{Guid.NewGuid():N}";
        var cluster = new LocalCluster(postgres, connection, id[..Math.Min(40, id.Length)]);
        await cluster.Store.EnsureSchemaAsync();
        return cluster;
    }

    public static string SiloDll()
    {
        if (Environment.GetEnvironmentVariable("ORCHESTRATOR_SILO_DLL") is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }

        // <project>/bin/<Configuration>/net10.0[/linux-x64]/ → src/Orchestrator.Silo/bin/<Configuration>/net10.0/linux-x64/
        var binDir = new DirectoryInfo(AppContext.BaseDirectory);
        var dir = binDir;
        while (dir.Parent is not null && dir.Parent.Name != "bin")
        {
            dir = dir.Parent;
        }

        var configuration = dir.Name;
        var root = binDir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Orchestrator.sln")))
        {
            root = root.Parent;
        }

        var dll = Path.Combine(root!.FullName, "src", "Orchestrator.Silo", "bin", configuration, "net10.0", "linux-x64", "Orchestrator.Silo.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"the silo build is missing: {dll} (build the solution first)");
    }

    public Task<SiloProcess> StartSiloAsync(string name, string role, params string[] extra) => StartSiloAsync(name, role, null, extra);

    /// <param name="environment">Variables set for the silo process (besides this process's own).</param>
    public async Task<SiloProcess> StartSiloAsync(string name, string role, IReadOnlyDictionary<string, string>? environment, params string[] extra)
    {
        var args = new List<string>
        {
            "--role", role, "--cluster", ConnectionString, "--cluster-id", ClusterId,
            "--silo-port", "0", "--gateway-port", "0", "--fast-membership",
        };
        if (role != "coordinator")
        {
            args.AddRange(["--worker-id", name]);
            // One cell at a time unless a test says otherwise: the tests reason about which worker trains which cell, and a
            // worker's default (its share of the cores) would change with the machine that runs them.
            if (!extra.Contains("--slots")) args.AddRange(["--slots", "1"]);
        }

        args.AddRange(extra);
        var silo = new SiloProcess(name, SiloDll(), args, environment);
        _silos.Add(silo);
        var timeout = Task.Delay(TimeSpan.FromSeconds(90));
        if (await Task.WhenAny(silo.Ready, timeout) == timeout)
        {
            throw new TimeoutException($"{name} was not ready after 90 s:\n{silo.Log}");
        }

        await silo.Ready;
        return silo;
    }

    /// <param name="tls">The cluster's certificate, for silos started with <c>--tls-cert</c>.</param>
    public async Task ConnectClientAsync(ClusterTls? tls = null)
    {
        _client = ClusterHost.BuildClient(ConnectionString, ClusterId, tls: tls);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await _client.StartAsync();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    /// <summary>Calls the cluster, retrying while it recovers from a failure (the CLI and workers do the same).</summary>
    public async Task<T> CallAsync<T>(Func<IGrainFactory, Task<T>> call, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? TimeSpan.FromSeconds(90));
        while (true)
        {
            try
            {
                return await call(Grains).WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception ex) when (DateTime.UtcNow < deadline && (ex is OrleansException or TimeoutException or SiloUnavailableException || CoordinatorWait.NoCoordinatorKnown(ex)))
            {
                await Task.Delay(300);
            }
        }
    }

    /// <summary>Waits until every stored cell of the sweep has a result row; returns the rows (what status, results and export read).</summary>
    public async Task<IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)>> WaitForStoredResultsAsync(string sweepId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows;
        while ((rows = await Store.GetSweepCellsAsync(sweepId)).Count == 0 || rows.Any(r => r.Result is null))
        {
            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"sweep {sweepId}: {rows.Count(r => r.Result is null)} of {rows.Count} cells without a result after {timeout}\n{Logs()}");
            }

            await Task.Delay(200);
        }

        return rows;
    }

    public async Task<SweepProgress> WaitForCompletionAsync(string sweepId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        SweepProgress? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await CallAsync(g => g.GetGrain<ISweepGrain>(sweepId).GetProgressAsync());
            if (last.IsComplete)
            {
                return last;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"sweep {sweepId} not complete after {timeout}: {last}\n{Logs()}");
    }

    /// <summary>Waits until some cell is leased by <paramref name="workerId"/>.</summary>
    public async Task WaitForLeaseAsync(string sweepId, string workerId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var cells = await CallAsync(g => g.GetGrain<ISweepGrain>(sweepId).GetCellsAsync());
            if (cells.Any(c => c.State == "leased" && c.WorkerId == workerId))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{workerId} leased nothing of {sweepId} within {timeout}\n{Logs()}");
    }

    /// <summary>Result rows of the sweep's cells, counted in SQL (not through the store's own reads).</summary>
    public async Task<(long Rows, long Succeeded, int MaxAttempt, IReadOnlyList<string> Workers)> ResultRowsAsync(string sweepId)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT count(*), count(*) FILTER (WHERE r.status = 'succeeded'), coalesce(max(r.attempt), 0),
                   coalesce(string_agg(DISTINCT r.worker_id, ','), '')
            FROM sweep_cells sc JOIN cell_results r ON r.cell_key = sc.cell_key
            WHERE sc.sweep_id = @sweep
            """, connection);
        command.Parameters.AddWithValue("sweep", sweepId);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2),
            reader.GetString(3).Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    public string Logs() => string.Join("\n", _silos.Select(s => $"----- {s.Name} -----\n{Tail(s.Log, 40)}"));

    private static string Tail(string text, int lines) => string.Join("\n", text.Split('\n').TakeLast(lines));

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            try
            {
                await _client.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
            }
            catch (Exception)
            {
                // the cluster may already be gone
            }

            _client.Dispose();
        }

        foreach (var silo in _silos)
        {
            silo.Dispose();
        }

        await Store.DisposeAsync();
    }
}
