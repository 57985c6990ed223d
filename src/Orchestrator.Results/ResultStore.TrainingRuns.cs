using System.Globalization;

namespace Orchestrator.Results;

/// <summary>The training-run log: one row per actual training of a cell.</summary>
internal sealed partial class ResultStore
{
    public Task StartTrainingRunAsync(TrainingRun run, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
            await ExecuteAsync(connection, tx, """
                INSERT INTO training_runs (run_id, cell_key, attempt, worker_id, started_at) VALUES (@run_id, @cell_key, @attempt, @worker_id, @started_at)
                ON CONFLICT (run_id) DO NOTHING
                """, token, ("run_id", run.RunId), ("cell_key", run.CellKey), ("attempt", run.Attempt), ("worker_id", run.WorkerId),
                ("started_at", Text(run.StartedAt))).ConfigureAwait(false), ct);
    }

    public Task FinishTrainingRunAsync(string runId, string outcome, DateTimeOffset finishedAt, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
            await ExecuteAsync(connection, tx,
                "UPDATE training_runs SET outcome = @outcome, finished_at = @finished_at WHERE run_id = @run_id AND outcome IS NULL",
                token, ("run_id", runId), ("outcome", outcome), ("finished_at", Text(finishedAt))).ConfigureAwait(false), ct);
    }

    public Task<IReadOnlyList<TrainingRun>> GetTrainingRunsAsync(IEnumerable<string> cellKeys, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(cellKeys);
        var keys = cellKeys.Distinct(StringComparer.Ordinal).ToList();
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var runs = new List<TrainingRun>();
            foreach (var chunk in keys.Chunk(KeysPerQuery))
            {
                var names = chunk.Select((_, i) => $"@k{i}").ToList();
                await using var command = Command(connection, tx,
                    $"SELECT run_id, cell_key, attempt, worker_id, started_at, finished_at, outcome FROM training_runs WHERE cell_key IN ({string.Join(", ", names)})",
                    chunk.Select((k, i) => ($"k{i}", (object?)k)).ToArray());
                await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    runs.Add(new TrainingRun(reader.GetString(0), reader.GetString(1), Convert.ToInt32(reader.GetValue(2), CultureInfo.InvariantCulture),
                        reader.GetString(3), Parse(reader.GetString(4)), reader.IsDBNull(5) ? null : Parse(reader.GetString(5)),
                        reader.IsDBNull(6) ? null : reader.GetString(6)));
                }
            }

            IReadOnlyList<TrainingRun> result = [.. runs.OrderBy(r => r.StartedAt).ThenBy(r => r.RunId, StringComparer.Ordinal)];
            return result;
        }, ct);
    }

    private static string Text(DateTimeOffset value) => value.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string value) => DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
}
