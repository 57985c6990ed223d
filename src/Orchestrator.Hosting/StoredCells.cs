using Orchestrator.Core.Cells;
using Orchestrator.Results;

namespace Orchestrator.Hosting;

/// <summary>Finds one stored cell of a sweep by its key or a unique prefix of it (<c>reproduce</c>, <c>export-hf</c>).</summary>
public static class StoredCells
{
    /// <param name="cellKey">The cell's key or a unique prefix of it (at least 6 characters).</param>
    /// <param name="purpose">Ends the error for a cell without a successful result ("to compare with").</param>
    /// <exception cref="ArgumentException">No such cell in the sweep, an ambiguous prefix, or no successful result.</exception>
    public static async Task<(CellDescriptor Descriptor, CellResultRecord Result, CellDefinition Cell)> FindSucceededAsync(
        IResultStore store, string sweepId, string cellKey, string purpose, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(cellKey);
        if (cellKey.Length < 6)
        {
            throw new ArgumentException($"cell key '{cellKey}' is too short: give at least 6 characters of it (see `orchestrator export`)");
        }

        var cells = await store.GetSweepCellsAsync(sweepId, ct);
        var matches = cells.Where(c => c.Cell.CellKey.StartsWith(cellKey, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 0)
        {
            throw new ArgumentException($"no cell of sweep {sweepId} has a key starting with '{cellKey}'");
        }

        if (matches.Count > 1)
        {
            throw new ArgumentException($"'{cellKey}' matches {matches.Count} cells of sweep {sweepId}: give more of the key");
        }

        var (descriptor, stored) = matches[0];
        var cell = CellDefinition.FromJson(descriptor.CellJson);
        if (stored is not { Status: CellStatus.Succeeded })
        {
            throw new ArgumentException($"cell {cell.Label} ({descriptor.CellKey[..12]}) has no successful result {purpose}");
        }

        return (descriptor, stored, cell);
    }
}
