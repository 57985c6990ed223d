using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;

namespace Orchestrator.Data;

/// <summary>One selection candidate's grid cells for one method (<see cref="SelectionRound.CandidateGrids"/>).</summary>
public sealed record CandidateCells(string Method, IReadOnlyDictionary<string, string> Candidate, IReadOnlyList<CellDefinition> Cells);

/// <summary>What the results database holds for one selection cell: whether it succeeded, its best step's dev loss, or why it failed.</summary>
public sealed record SelectionCellOutcome(bool Succeeded, double BestDevLoss, string? Error);

/// <summary>
/// The decision for one method (one size with <c>per_size</c>): the <see cref="Choice"/>, or none yet with the reason
/// (<see cref="Waiting"/>); <see cref="FailedCells"/> names the selection cells that failed, which block the choice.
/// </summary>
/// <param name="Evidence">Per candidate (in the spec's order), the dev losses of its finished cells so far.</param>
public sealed record SelectionDecision(string Method, int? Size, int Expected, int Finished, SelectionChoice? Choice, string? Waiting,
    IReadOnlyList<string> FailedCells, IReadOnlyList<SelectionEvidence> Evidence)
{
    /// <summary>The method (and size) as a user reads it: <c>lora</c> or <c>lora n=10</c>.</summary>
    public string Scope => Size is null ? Method : $"{Method} n={Size}";
}

/// <summary>
/// A sweep with <c>selection:</c>, run in two phases: first the selection cells with the grid of every method that selects
/// nothing; then, once a method's selection cells have finished, its grid with the chosen values. The choice is a function of
/// the stored selection cells alone (<see cref="SelectionChooser"/>), so whoever reads the database makes the same one, and the
/// grid cells are those the spec would give with the chosen values written by hand (the same keys, so they are reused).
/// </summary>
public static class SelectionRound
{
    /// <summary>The cells to run before any choice: earlier stages, the selection cells, and the grid of methods without a selection.</summary>
    public static IReadOnlyList<CellDefinition> FirstPhase(SweepPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var selected = SelectedMethods(plan.Spec);
        return plan.Cells.Where(c => c.Stage is not null || !selected.Contains(c.Method))
            .Concat(plan.Selection.Select(s => s.Cell))
            .ToList();
    }

    /// <summary>
    /// The decision per method (per size with <c>per_size</c>) from the stored selection cells (<paramref name="stored"/>, by
    /// cell key; a cell not there has not finished). A failed selection cell blocks its method's choice and is named.
    /// </summary>
    public static IReadOnlyList<SelectionDecision> Decide(SweepPlan plan, IReadOnlyDictionary<string, SelectionCellOutcome> stored)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(stored);
        var decisions = new List<SelectionDecision>();
        foreach (var method in plan.Spec.Methods.Where(m => m.Selection is not null))
        {
            var selection = method.Selection!;
            var cells = plan.Selection.Where(s => s.Method == method.Name).ToList();
            IEnumerable<int?> scopes = selection.PerSize ? plan.Spec.Grid.Sizes.Select(s => (int?)s) : [null];
            foreach (var size in scopes)
            {
                var scoped = cells.Where(c => size is null || c.Cell.Size == size).ToList();
                var combinations = selection.Combinations();
                var expected = scoped.Count / combinations.Count;
                var failed = scoped
                    .Where(c => stored.TryGetValue(c.Cell.Key, out var o) && !o.Succeeded)
                    .Select(c => $"{c.Cell.Label} ({SelectionSpec.Label(c.Candidate)}, {c.Cell.Key[..12]}): {(stored[c.Cell.Key].Error ?? "failed").Split('\n')[0].Trim()}")
                    .ToList();
                var losses = combinations.Select(combination =>
                {
                    var label = SelectionSpec.Label(combination);
                    IReadOnlyList<double> values = scoped
                        .Where(c => SelectionSpec.Label(c.Candidate) == label && stored.TryGetValue(c.Cell.Key, out var o) && o.Succeeded)
                        .Select(c => stored[c.Cell.Key].BestDevLoss)
                        .ToList();
                    return (combination, values);
                }).ToList();
                var finished = scoped.Count(c => stored.ContainsKey(c.Cell.Key));
                var evidence = losses.Select(l => new SelectionEvidence(l.combination, expected, MetricStatistics.Of(l.values.Where(double.IsFinite)))).ToList();
                var scope = size is null ? method.Name : $"{method.Name} n={size}";
                if (failed.Count > 0)
                {
                    decisions.Add(new SelectionDecision(method.Name, size, scoped.Count, finished, null,
                        $"{scope}: {failed.Count} selection cell(s) failed, so nothing is chosen and its grid does not run: {failed[0]}", failed, evidence));
                    continue;
                }

                var (choice, incomplete) = SelectionChooser.Choose(method.Name, size, selection, losses, expected);
                decisions.Add(new SelectionDecision(method.Name, size, scoped.Count, finished, choice, incomplete, [], evidence));
            }
        }

        return decisions;
    }

    /// <summary>
    /// The sweep's grid with the choices applied, in the plan's order: each cell of a selecting method replaced by the cell with its
    /// chosen values; the cells of a method (or size) without a choice left out; every other cell as planned.
    /// </summary>
    public static IReadOnlyList<CellDefinition> ChosenGrid(SweepPlan plan, IReadOnlyList<SelectionDecision> decisions)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(decisions);
        var spec = plan.Spec;
        var selected = SelectedMethods(spec);
        var chosen = new Dictionary<(string Split, string Method, int Size, int Subsample, int Seed), CellDefinition>();
        foreach (var decision in decisions.Where(d => d.Choice is not null))
        {
            var method = Chosen(spec, decision.Method, decision.Choice!.Chosen);
            foreach (var cell in CellExpander.Expand(spec with { Methods = [method] }, plan.DatasetOf, plan.Model))
            {
                if (cell.Stage is null && (decision.Size is null || cell.Size == decision.Size))
                {
                    chosen[(cell.Split, cell.Method, cell.Size, cell.Subsample, cell.Seed)] = cell;
                }
            }
        }

        var grid = new List<CellDefinition>();
        foreach (var cell in plan.Cells)
        {
            if (cell.Stage is not null || !selected.Contains(cell.Method))
            {
                grid.Add(cell);
            }
            else if (chosen.TryGetValue((cell.Split, cell.Method, cell.Size, cell.Subsample, cell.Seed), out var replaced))
            {
                grid.Add(replaced);
            }
        }

        return grid;
    }

    /// <summary>
    /// Every candidate's grid, for a coordinator to queue the chosen one without the client: per selecting method and candidate
    /// (in the spec's order), the cells <see cref="ChosenGrid"/> would add were that candidate chosen for every size (the cells a
    /// spec with those values written by hand gives). Refused when the sweep, with every candidate's grid, exceeds
    /// <paramref name="maxCells"/> (<c>--max-cells</c>).
    /// </summary>
    public static IReadOnlyList<CandidateCells> CandidateGrids(SweepPlan plan, long maxCells)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var grids = new List<CandidateCells>();
        var selected = SelectedMethods(plan.Spec);
        long total = FirstPhase(plan).Count;
        foreach (var method in plan.Spec.Methods.Where(m => m.Selection is not null))
        {
            var selection = method.Selection!;
            IEnumerable<int?> scopes = selection.PerSize ? plan.Spec.Grid.Sizes.Select(s => (int?)s) : [null];
            var perCandidate = plan.Cells.Count(c => c.Stage is null && c.Method == method.Name);
            var candidates = selection.Combinations();
            total += (long)perCandidate * candidates.Count;
            if (total > maxCells)
            {
                throw new ArgumentException(
                    $"selection: {method.Name}'s grid for each of its {candidates.Count} candidates ({candidates.Count} × {perCandidate} cells) " +
                    $"brings the sweep to {total:N0} cells or more, over the limit of {maxCells:N0} (--max-cells): the coordinator must " +
                    "hold every candidate's grid to queue the chosen one; use fewer candidates or a smaller grid, or raise --max-cells");
            }

            foreach (var candidate in candidates)
            {
                var decisions = scopes.Select(size => new SelectionDecision(method.Name, size, 0, 0,
                    new SelectionChoice(method.Name, size, candidate, [], []), null, [], [])).ToList();
                var cells = ChosenGrid(plan, decisions).Where(c => c.Stage is null && c.Method == method.Name && selected.Contains(c.Method)).ToList();
                grids.Add(new CandidateCells(method.Name, candidate, cells));
            }
        }

        return grids;
    }

    /// <summary><paramref name="name"/>'s method of <paramref name="spec"/> with <paramref name="values"/> applied, and no selection left.</summary>
    public static MethodSpec Chosen(SweepSpec spec, string name, IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var method = spec.Methods.Single(m => m.Name == name);
        return SelectionSpec.Apply(method, spec.Training, values) with { Selection = null };
    }

    /// <summary>The best step's dev loss a cell recorded in its provenance (<c>best_dev_loss</c>); NaN when absent.</summary>
    public static double BestDevLoss(string provenanceJson)
    {
        using var doc = JsonDocument.Parse(provenanceJson);
        if (!doc.RootElement.TryGetProperty("best_dev_loss", out var value))
        {
            return double.NaN;
        }

        return value.ValueKind switch
        {
            JsonValueKind.Number => value.GetDouble(),
            JsonValueKind.String when double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var x) => x,
            _ => double.NaN,
        };
    }

    private static HashSet<string> SelectedMethods(SweepSpec spec) =>
        spec.Methods.Where(m => m.Selection is not null).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
}
