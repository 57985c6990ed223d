using System.Globalization;
using System.Text.Json;

namespace Orchestrator.Results;

/// <summary>The selection log: each sweep's hyper-parameter choices, kept as first made.</summary>
internal sealed partial class ResultStore
{
    public Task SaveSelectionsAsync(IReadOnlyList<StoredSelection> choices, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(choices);
        foreach (var choice in choices)
        {
            ArgumentNullException.ThrowIfNull(choice);
            ArgumentException.ThrowIfNullOrWhiteSpace(choice.SweepId);
            ArgumentException.ThrowIfNullOrWhiteSpace(choice.Method);
            if (choice.Size is <= 0)
            {
                throw new ArgumentException($"a choice's size is positive or null (every size), not {choice.Size}", nameof(choices));
            }
        }

        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            foreach (var choice in choices)
            {
                await ExecuteAsync(connection, tx, """
                    INSERT INTO sweep_selections (sweep_id, method, size, chosen_json, evidence_json, decided_at)
                    VALUES (@sweep_id, @method, @size, @chosen_json, @evidence_json, @decided_at)
                    ON CONFLICT (sweep_id, method, size) DO NOTHING
                    """, token, ("sweep_id", choice.SweepId), ("method", choice.Method), ("size", choice.Size ?? 0),
                    ("chosen_json", JsonSerializer.Serialize(new SortedDictionary<string, string>(choice.Chosen.ToDictionary(), StringComparer.Ordinal))),
                    ("evidence_json", choice.EvidenceJson), ("decided_at", Text(choice.DecidedAt))).ConfigureAwait(false);
            }

            return true;
        }, ct);
    }

    public Task<IReadOnlyList<StoredSelection>> GetSelectionsAsync(string sweepId, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var choices = new List<StoredSelection>();
            await using var command = Command(connection, tx,
                "SELECT method, size, chosen_json, evidence_json, decided_at FROM sweep_selections WHERE sweep_id = @sweep_id ORDER BY method, size",
                ("sweep_id", (object?)sweepId));
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                var size = Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture);
                var chosen = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(2)) ?? [];
                choices.Add(new StoredSelection(sweepId, reader.GetString(0), size == 0 ? null : size,
                    new SortedDictionary<string, string>(chosen, StringComparer.Ordinal), reader.GetString(3), Parse(reader.GetString(4))));
            }

            IReadOnlyList<StoredSelection> result = choices;
            return result;
        }, ct);
    }

    public Task SaveCandidateCellsAsync(string sweepId, IReadOnlyList<CandidateCell> cells, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        ArgumentNullException.ThrowIfNull(cells);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            foreach (var cell in cells)
            {
                await ExecuteAsync(connection, tx, """
                    INSERT INTO sweep_candidate_cells (sweep_id, method, candidate_json, cell_key, cell_json)
                    VALUES (@sweep_id, @method, @candidate_json, @cell_key, @cell_json)
                    ON CONFLICT (sweep_id, method, candidate_json, cell_key) DO NOTHING
                    """, token, ("sweep_id", sweepId), ("method", cell.Method), ("candidate_json", CandidateJson(cell.Candidate)),
                    ("cell_key", cell.CellKey), ("cell_json", cell.CellJson)).ConfigureAwait(false);
            }

            return true;
        }, ct);
    }

    public Task<IReadOnlyList<CandidateCell>> GetCandidateCellsAsync(string sweepId, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sweepId);
        return InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            var cells = new List<CandidateCell>();
            await using var command = Command(connection, tx,
                "SELECT method, candidate_json, cell_key, cell_json FROM sweep_candidate_cells WHERE sweep_id = @sweep_id ORDER BY method, candidate_json, cell_key",
                ("sweep_id", (object?)sweepId));
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                var candidate = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(1)) ?? [];
                cells.Add(new CandidateCell(reader.GetString(0), new SortedDictionary<string, string>(candidate, StringComparer.Ordinal),
                    reader.GetString(2), reader.GetString(3)));
            }

            IReadOnlyList<CandidateCell> result = cells;
            return result;
        }, ct);
    }

    private static string CandidateJson(IReadOnlyDictionary<string, string> candidate) =>
        JsonSerializer.Serialize(new SortedDictionary<string, string>(candidate.ToDictionary(), StringComparer.Ordinal));
}
