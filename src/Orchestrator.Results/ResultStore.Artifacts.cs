using System.Globalization;
using System.Text.Json;

namespace Orchestrator.Results;

/// <summary>The artifact index: which cell stored which trained method (by content hash) in the artifact store.</summary>
internal sealed partial class ResultStore
{
    public Task RecordArtifactAsync(ArtifactRecord artifact, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(artifact);
        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
            await ExecuteAsync(connection, tx, """
                INSERT INTO artifacts (cell_key, kind, sha256, bytes, created_at) VALUES (@cell_key, @kind, @sha256, @bytes, @created_at)
                ON CONFLICT (cell_key) DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, bytes = excluded.bytes,
                    created_at = excluded.created_at
                """, token, ("cell_key", artifact.CellKey), ("kind", artifact.Kind), ("sha256", artifact.Sha256), ("bytes", artifact.Bytes),
                ("created_at", artifact.CreatedAt.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture))).ConfigureAwait(false), ct);
    }

    public async Task<IReadOnlyDictionary<string, ArtifactRecord>> GetArtifactsAsync(IEnumerable<string> cellKeys, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(cellKeys);
        var keys = cellKeys.Distinct(StringComparer.Ordinal).ToList();
        var found = new Dictionary<string, ArtifactRecord>(StringComparer.Ordinal);
        foreach (var chunk in keys.Chunk(KeysPerQuery))
        {
            var names = chunk.Select((_, i) => $"@k{i}").ToList();
            var rows = await QueryArtifactsAsync($"WHERE cell_key IN ({string.Join(", ", names)})",
                chunk.Select((k, i) => ($"k{i}", (object?)k)).ToArray(), ct).ConfigureAwait(false);
            foreach (var row in rows)
            {
                found[row.CellKey] = row;
            }
        }

        return found;
    }

    public Task<IReadOnlyList<ArtifactRecord>> ListArtifactsAsync(CancellationToken ct = default) =>
        QueryArtifactsAsync("", [], ct);

    public Task DeleteArtifactRecordsAsync(IReadOnlyCollection<string> cellKeys, CancellationToken ct = default)
    {
        if (cellKeys.Count == 0)
        {
            return Task.CompletedTask;
        }

        return InTransactionAsync(write: true, async (connection, tx, _, token) =>
        {
            foreach (var chunk in cellKeys.Chunk(KeysPerQuery))
            {
                var names = chunk.Select((_, i) => $"@k{i}").ToList();
                await ExecuteAsync(connection, tx, $"DELETE FROM artifacts WHERE cell_key IN ({string.Join(", ", names)})", token,
                    chunk.Select((k, i) => ($"k{i}", (object?)k)).ToArray()).ConfigureAwait(false);
            }

            return true;
        }, ct);
    }

    public Task<IReadOnlySet<string>> GetNeededCellKeysAsync(CancellationToken ct = default) =>
        InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, "SELECT cell_json FROM cells WHERE cell_json LIKE '%\"needs\":%'");
            var needed = new HashSet<string>(StringComparer.Ordinal);
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                using var json = JsonDocument.Parse(reader.GetString(0));
                if (json.RootElement.TryGetProperty("needs", out var needs) && needs.ValueKind == JsonValueKind.Array)
                {
                    foreach (var key in needs.EnumerateArray())
                    {
                        needed.Add(key.GetString() ?? "");
                    }
                }
            }

            IReadOnlySet<string> result = needed;
            return result;
        }, ct);

    private Task<IReadOnlyList<ArtifactRecord>> QueryArtifactsAsync(string where, (string Name, object? Value)[] parameters, CancellationToken ct) =>
        InTransactionAsync(write: false, async (connection, tx, _, token) =>
        {
            await using var command = Command(connection, tx, $"SELECT cell_key, kind, sha256, bytes, created_at FROM artifacts {where} ORDER BY created_at, cell_key",
                parameters);
            var list = new List<ArtifactRecord>();
            await using var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                list.Add(new ArtifactRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                    Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture),
                    DateTimeOffset.Parse(reader.GetString(4), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)));
            }

            IReadOnlyList<ArtifactRecord> result = list;
            return result;
        }, ct);
}
