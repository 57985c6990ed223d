using System.Globalization;

namespace Orchestrator.Core.Specs;

/// <summary>
/// How many cells a spec expands to, counted from its grid without expanding it: per stage, splits × methods × sizes ×
/// subsamples × seeds. Checked before expansion, so a spec with millions of cells gets a spec error with the count instead
/// of running out of memory or failing on a message size.
/// </summary>
public static class CellCount
{
    /// <summary>The spec's number of cells, all stages together.</summary>
    public static long Of(SweepSpec spec) =>
        spec.Stages.Sum(s => OfStage(s.Dataset, s.Methods, s.Grid)) + OfStage(spec.Dataset, spec.Methods, spec.Grid) + OfSelection(spec);

    /// <summary>The selection cells: per method with a selection, combinations × sizes × its subsamples × its seeds.</summary>
    public static long OfSelection(SweepSpec spec) => spec.Methods.Where(m => m.Selection is not null).Sum(m =>
        m.Selection!.Candidates.Values.Aggregate(1L, (n, values) => n * values.Count) * spec.Grid.Sizes.Count * m.Selection.Subsamples * m.Selection.Seeds);

    /// <summary>
    /// An error naming the count, how it arises and the limit when the spec has more than <paramref name="maxCells"/> cells
    /// (located at the grid of the stage with the most cells); null when it is within the limit.
    /// </summary>
    public static SpecError? Check(SweepSpec spec, long maxCells)
    {
        var parts = spec.Stages.Select((s, i) => (Path: $"stages[{i}].grid", s.Name, s.Dataset, s.Methods, s.Grid))
            .Append((Path: "grid", Name: SweepSpec.MainStage, spec.Dataset, spec.Methods, spec.Grid))
            .Select(p => (p.Path, p.Name, Count: OfStage(p.Dataset, p.Methods, p.Grid),
                Formula: $"{p.Dataset.Splits.Count} split(s) × {p.Methods.Count} method(s) × {p.Grid.Sizes.Count} size(s) × " +
                         $"{p.Grid.Subsamples} subsample(s) × {p.Grid.Seeds.Count} seed(s)"))
            .ToList();
        long selection = OfSelection(spec);
        if (selection > 0)
        {
            parts.Add((Path: "selection", Name: SweepSpec.SelectionStage, Count: selection,
                Formula: "candidate combinations × sizes × selection subsamples × selection seeds, per selected method"));
        }

        var total = parts.Sum(p => p.Count);
        if (total <= maxCells)
        {
            return null;
        }

        var largest = parts.MaxBy(p => p.Count);
        var breakdown = parts.Count == 1
            ? largest.Formula
            : string.Join("; ", parts.Select(p => string.Create(CultureInfo.InvariantCulture, $"stage {p.Name}: {p.Count:N0} = {p.Formula}")));
        return new SpecError(largest.Path, string.Create(CultureInfo.InvariantCulture,
            $"the spec expands to {total:N0} cells ({breakdown}), more than the limit of {maxCells:N0}; " +
            $"make the grid smaller, or raise the limit with --max-cells {total}"));
    }

    private static long OfStage(DatasetSpec dataset, IReadOnlyList<MethodSpec> methods, GridSpec grid) =>
        (long)dataset.Splits.Count * methods.Count * grid.Sizes.Count * grid.Subsamples * grid.Seeds.Count;
}
