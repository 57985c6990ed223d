using System.Runtime.InteropServices;
using Npgsql;
using Orchestrator.Abstractions;

namespace Orchestrator.IntegrationTests.Cluster;

/// <summary>Signals for real silo processes: a graceful stop (SIGTERM) and a pause (SIGSTOP / SIGCONT), as an OS would send them.</summary>
public static class Signals
{
    private const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    public static void Terminate(this SiloProcess silo) => Send(silo, SigTerm);

    public static void Pause(this SiloProcess silo) => Send(silo, SigStop);

    public static void Resume(this SiloProcess silo) => Send(silo, SigCont);

    /// <summary>Waits for the process to exit; false when it is still running after <paramref name="timeout"/>.</summary>
    public static async Task<bool> ExitedWithinAsync(this SiloProcess silo, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await silo.Process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static void Send(SiloProcess silo, int signal)
    {
        if (!silo.Process.HasExited && Kill(silo.Process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({silo.Process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}

/// <summary>What the database says about one cell of a sweep, next to what the queue says.</summary>
/// <param name="Status">The stored result's status (null: no result row).</param>
/// <param name="Trainings">Training runs recorded for the cell (every actual training, finished or not).</param>
/// <param name="SucceededTrainings">Of those, the ones that ended with a result.</param>
/// <param name="Attempts">Attempts counted in the database (leases handed out), and the cell's limit.</param>
public sealed record CellTruth(
    string CellKey, string Label, string? Status, int ResultAttempt, string? Error, int Trainings, int SucceededTrainings,
    int Attempts, int AttemptLimit, string QueueState, int QueueAttempts, string? QueueError);

/// <summary>Reads a sweep's truth straight from PostgreSQL (not through the store) and the queue's view of it.</summary>
public static class SweepTruth
{
    public static async Task<IReadOnlyList<CellTruth>> ReadAsync(LocalCluster cluster, string sweepId)
    {
        var queue = (await cluster.CallAsync(g => g.GetGrain<ISweepGrain>(sweepId).GetCellsAsync())).ToDictionary(c => c.CellKey);
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT sc.cell_key, r.status, coalesce(r.attempt, 0), r.error,
                   (SELECT count(*) FROM training_runs t WHERE t.cell_key = sc.cell_key),
                   (SELECT count(*) FROM training_runs t WHERE t.cell_key = sc.cell_key AND t.outcome = 'succeeded'),
                   coalesce(a.attempts, 0), coalesce(a.attempt_limit, 0)
            FROM sweep_cells sc
            LEFT JOIN cell_results r ON r.cell_key = sc.cell_key
            LEFT JOIN cell_attempts a ON a.cell_key = sc.cell_key
            WHERE sc.sweep_id = @sweep
            ORDER BY sc.cell_key
            """, connection);
        command.Parameters.AddWithValue("sweep", sweepId);
        var cells = new List<CellTruth>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var key = reader.GetString(0);
            var q = queue.GetValueOrDefault(key);
            cells.Add(new CellTruth(key, q?.Label ?? key[..12], reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2),
                reader.IsDBNull(3) ? null : reader.GetString(3), (int)reader.GetInt64(4), (int)reader.GetInt64(5), reader.GetInt32(6),
                reader.GetInt32(7), q?.State ?? "missing", q?.Attempts ?? 0, q?.LastError));
        }

        return cells;
    }

    /// <summary>Training runs of one cell by worker (tests wait for a cell to start training on a given worker).</summary>
    public static async Task<int> TrainingsAsync(LocalCluster cluster, string? workerId = null, string? cellKey = null)
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM training_runs WHERE (@worker = '' OR worker_id = @worker) AND (@cell = '' OR cell_key = @cell)", connection);
        command.Parameters.AddWithValue("worker", workerId ?? "");
        command.Parameters.AddWithValue("cell", cellKey ?? "");
        return (int)(long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Waits until <paramref name="workerId"/> is training some cell (or, with <paramref name="orFinished"/>, has trained one:
    /// a short cell can start and finish between two looks); returns the cell's key.
    /// </summary>
    public static async Task<string> WaitForTrainingAsync(LocalCluster cluster, string workerId, TimeSpan timeout, bool orFinished = false)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            await using (var connection = new NpgsqlConnection(cluster.ConnectionString))
            {
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand(
                    "SELECT cell_key FROM training_runs WHERE worker_id = @worker AND (outcome IS NULL OR @finished) ORDER BY started_at LIMIT 1", connection);
                command.Parameters.AddWithValue("finished", orFinished);
                command.Parameters.AddWithValue("worker", workerId);
                if (await command.ExecuteScalarAsync() is string key)
                {
                    return key;
                }
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{workerId} started training nothing within {timeout}\n{cluster.Logs()}");
    }

    /// <summary>
    /// Waits until the database has counted the first attempt of one of the sweep's cells (a lease was handed out, to any
    /// worker). Durable, unlike the queue's "leased" state: a tiny cell can be leased and finished between two looks at the queue.
    /// </summary>
    public static async Task WaitForFirstLeaseAsync(LocalCluster cluster, string sweepId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            await using (var connection = new NpgsqlConnection(cluster.ConnectionString))
            {
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand(
                    "SELECT count(*) FROM sweep_cells sc JOIN cell_attempts a ON a.cell_key = sc.cell_key WHERE sc.sweep_id = @sweep AND a.attempts > 0",
                    connection);
                command.Parameters.AddWithValue("sweep", sweepId);
                if ((long)(await command.ExecuteScalarAsync())! > 0)
                {
                    return;
                }
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"no cell of {sweepId} was leased within {timeout}\n{cluster.Logs()}");
    }

    /// <summary>
    /// The end-state invariants every scenario checks: the queue says what the database says for every cell (done exactly when
    /// a success is stored; failed only without one), attempts stay within each cell's limit, and a succeeded cell trained at
    /// least once with a success recorded. A queue rebuilt from the database (a new coordinator activation) holds only the cells
    /// still to do and counts the others as already done: a cell it does not list must have its success in the database.
    /// </summary>
    public static void AssertConsistent(IReadOnlyList<CellTruth> cells)
    {
        foreach (var c in cells)
        {
            var context = $"cell {c.Label}: {c}";
            Assert.True(c.Attempts <= c.AttemptLimit, $"attempts over budget: {context}");
            if (c.Status == "succeeded")
            {
                Assert.True(c.QueueState is "done" or "missing", $"the database holds a success but the queue says {c.QueueState}: {context}");
                Assert.True(c.SucceededTrainings >= 1, $"a success without a recorded training: {context}");
            }
            else
            {
                Assert.True(c.QueueState is "failed" or "blocked", $"no success in the database but the queue says {c.QueueState}: {context}");
                Assert.True(c.Status is null || c.QueueError is not null, $"a failed cell without a reason: {context}");
            }
        }
    }
}
