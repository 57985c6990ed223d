using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>Finds one cell of a sweep by its key or a unique prefix of it, as users type them.</summary>
public static class CellLookup
{
    /// <summary>Shortest prefix accepted (12 hex digits are shown everywhere; 6 already make a collision unlikely).</summary>
    public const int MinimumPrefix = 6;

    /// <exception cref="ArgumentException">The prefix is too short, matches no cell of the sweep, or several.</exception>
    public static async Task<(CellDescriptor Cell, CellResultRecord? Result)> FindAsync(IResultStore store, string sweepId, string cellKey,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        if (cellKey.Length < MinimumPrefix)
        {
            throw new ArgumentException($"cell key '{cellKey}' is too short: give at least {MinimumPrefix} characters of it (see `orchestrator export`)");
        }

        var cells = await store.GetSweepCellsAsync(sweepId, ct).ConfigureAwait(false);
        var matches = cells.Where(c => c.Cell.CellKey.StartsWith(cellKey, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            0 => throw new ArgumentException($"no cell of sweep {sweepId} has a key starting with '{cellKey}'"),
            1 => matches[0],
            _ => throw new ArgumentException($"'{cellKey}' matches {matches.Count} cells of sweep {sweepId}: give more of the key"),
        };
    }
}
