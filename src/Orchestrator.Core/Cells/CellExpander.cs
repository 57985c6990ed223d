using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Cells;

/// <summary>
/// Expands a validated spec into its cells: first each earlier stage (in dependency order), then the spec's own stage; within a
/// stage split × method × size × subsample × seed, in that (stable) order. A method with <c>needs</c> gets the keys of the
/// selected cells of earlier stages (in the order of its selectors, then of those cells), so its key includes theirs.
/// The dataset and model identities (content hashes) are resolved by the caller, who can read files.
/// </summary>
public static class CellExpander
{
    public const string ManifestAlgorithm = "rank-sha256/1";
    public const string TrainingPool = "train";

    /// <summary>Expands a spec whose stages (if any) all use <paramref name="dataset"/>.</summary>
    public static IReadOnlyList<CellDefinition> Expand(SweepSpec spec, DatasetIdentity dataset, ModelIdentity model) =>
        Expand(spec, _ => dataset, model);

    /// <summary>Expands a spec; <paramref name="datasetOf"/> gives the identity of each stage's dataset (the spec's own included).</summary>
    public static IReadOnlyList<CellDefinition> Expand(SweepSpec spec, Func<DatasetSpec, DatasetIdentity> datasetOf, ModelIdentity model)
    {
        var decoding = Decoding(spec.Decoding);

        var cells = new List<CellDefinition>();
        var byStage = new Dictionary<string, List<CellDefinition>>(StringComparer.Ordinal);
        foreach (var stage in InDependencyOrder(spec.Stages))
        {
            var stageCells = ExpandStage(stage.Name, datasetOf(stage.Dataset), stage.Dataset.Splits, stage.Dataset.ShareTraining, stage.Methods, stage.Grid, stage.Training,
                model, decoding, byStage);
            byStage[stage.Name] = stageCells;
            cells.AddRange(stageCells);
        }

        cells.AddRange(ExpandStage(null, datasetOf(spec.Dataset), spec.Dataset.Splits, spec.Dataset.ShareTraining, spec.Methods, spec.Grid, spec.Training, model, decoding, byStage));
        return cells;
    }

    private static List<CellDefinition> ExpandStage(string? stage, DatasetIdentity dataset, IReadOnlyList<string> splits, bool shareTraining, IReadOnlyList<MethodSpec> methods,
        GridSpec grid, TrainingSpec sweepTraining, ModelIdentity model, DecodingSettings decoding, IReadOnlyDictionary<string, List<CellDefinition>> earlier)
    {
        var manifest = new ManifestIdentity(ManifestAlgorithm, TrainingPool, grid.ManifestSeed, grid.Nested, SpecParser.DevFraction);
        var cells = new List<CellDefinition>();
        var trainedBy = new Dictionary<(string, int, int, int), string>();
        foreach (var split in splits)
        {
            foreach (var method in methods)
            {
                foreach (var size in grid.Sizes)
                {
                    var training = Training(method.TrainingOr(sweepTraining), method, size);
                    for (var subsample = 0; subsample < grid.Subsamples; subsample++)
                    {
                        foreach (var seed in grid.Seeds)
                        {
                            // dataset.share_training: the first split's cell trains; the others reuse its trained model.
                            var point = (method.Name, size, subsample, seed);
                            var reuse = shareTraining && split != splits[0];
                            var needs = reuse ? [trainedBy[point]] : method.Needs.Count == 0 ? null : Select(method, seed, earlier);
                            var cell = new CellDefinition(
                                CellDefinition.CurrentCodeVersion,
                                dataset,
                                split,
                                model,
                                method.Name,
                                new SortedDictionary<string, string>(method.Options.ToDictionary(), StringComparer.Ordinal),
                                size,
                                subsample,
                                manifest,
                                seed,
                                training,
                                decoding,
                                stage,
                                needs,
                                reuse ? true : null);
                            cells.Add(cell);
                            if (split == splits[0])
                            {
                                trainedBy[point] = cell.Key;
                            }
                        }
                    }
                }
            }
        }

        return cells;
    }

    /// <summary>
    /// The selection cells of a spec (<c>selection:</c>): for each method with a selection, each combination of candidate
    /// values, every grid size, the first <see cref="SelectionSpec.Subsamples"/> subsamples and the first
    /// <see cref="SelectionSpec.Seeds"/> seeds, on the first split (the dev loss does not depend on the evaluation split).
    /// They are ordinary cells of stage <see cref="SweepSpec.SelectionStage"/>, so their keys never collide with the grid's
    /// and their results never average into the grid's points.
    /// </summary>
    public static IReadOnlyList<SelectionCell> ExpandSelection(SweepSpec spec, DatasetIdentity dataset, ModelIdentity model)
    {
        var decoding = Decoding(spec.Decoding);
        var cells = new List<SelectionCell>();
        var none = new Dictionary<string, List<CellDefinition>>(StringComparer.Ordinal);
        foreach (var method in spec.Methods.Where(m => m.Selection is not null))
        {
            var selection = method.Selection!;
            var grid = spec.Grid with { Subsamples = selection.Subsamples, Seeds = spec.Grid.Seeds.Take(selection.Seeds).ToList() };
            foreach (var combination in selection.Combinations())
            {
                var candidate = SelectionSpec.Apply(method, spec.Training, combination) with { Selection = null };
                foreach (var cell in ExpandStage(SweepSpec.SelectionStage, dataset, [spec.Dataset.Splits[0]], false, [candidate], grid, spec.Training, model, decoding, none))
                {
                    cells.Add(new SelectionCell(cell, method.Name, combination));
                }
            }
        }

        return cells;
    }

    /// <summary>
    /// A cell's decoding settings. Settings at their former behaviour (length penalty 1, lengths of new tokens, no
    /// min_length) stay out of the key, so cells decoded that way keep the keys they had.
    /// </summary>
    public static DecodingSettings Decoding(DecodingSpec d)
    {
        if (d.Strategy == "greedy")
        {
            return new DecodingSettings("greedy", 1, d.MaxNewTokens, d.MinNewTokens, MinLength: d.MinLength);
        }

        return new DecodingSettings(d.Strategy, d.BeamSize, d.MaxNewTokens, d.MinNewTokens,
            d.LengthPenalty == 1.0 ? null : d.LengthPenalty,
            d.LengthNormalization == DecodingSpec.NormalizeNewTokens ? null : d.LengthNormalization,
            d.MinLength);
    }

    /// <summary>
    /// A cell's training settings for <paramref name="method"/> at <paramref name="size"/>. The base dropout is always in the
    /// key: the defaults changed what runs (the base used to train with its checkpoint's rate, 0 in our presets), so no cell
    /// stored before may pass for one with the new defaults. The token-mean loss, the former behaviour, stays out.
    /// </summary>
    public static TrainingSettings Training(TrainingSpec t, MethodSpec method, int size) =>
        new(t.LearningRate, t.BatchSize, t.MaxStepsFor(size), t.WarmupSteps, t.EvalEvery, t.WeightDecay,
            t.BaseDropoutFor(method), t.Loss == TrainingSpec.LossTokenMean ? null : t.Loss);

    /// <summary>Stages in dependency order (each after the stages it needs; declaration order otherwise). The graph is acyclic.</summary>
    public static IReadOnlyList<StageSpec> InDependencyOrder(IReadOnlyList<StageSpec> stages)
    {
        var ordered = new List<StageSpec>();
        var placed = new HashSet<string>(StringComparer.Ordinal);
        while (ordered.Count < stages.Count)
        {
            var next = stages.FirstOrDefault(s => !placed.Contains(s.Name) &&
                                         s.Methods.SelectMany(m => m.Needs).All(n => placed.Contains(n.Stage)));
            if (next is null)
            {
                throw new ArgumentException("the stages' needs form a cycle or name an unknown stage (the spec parser refuses such specs)", nameof(stages));
            }

            ordered.Add(next);
            placed.Add(next.Name);
        }

        return ordered;
    }

    /// <summary>The keys of the earlier cells <paramref name="method"/>'s selectors pick for a cell with <paramref name="seed"/>.</summary>
    private static List<string> Select(MethodSpec method, int seed, IReadOnlyDictionary<string, List<CellDefinition>> earlier)
    {
        var keys = new List<string>();
        foreach (var need in method.Needs)
        {
            if (!earlier.TryGetValue(need.Stage, out var candidates))
            {
                throw new InvalidOperationException($"method {method.Name} needs stage '{need.Stage}', which is not expanded before it (the parser orders stages)");
            }

            var matched = candidates.Where(c =>
                    (need.Method is null || c.Method == need.Method) &&
                    (need.Size is null || c.Size == need.Size) &&
                    (need.Subsample is null || c.Subsample == need.Subsample) &&
                    (need.SameSeed ? c.Seed == seed : need.Seed is null || c.Seed == need.Seed))
                .Select(c => c.Key)
                .ToList();
            if (matched.Count == 0)
            {
                throw new SpecValidationException("<spec>", [new SpecError($"methods.{method.Name}.needs", $"{need} selects no cell")]);
            }

            keys.AddRange(matched.Where(k => !keys.Contains(k, StringComparer.Ordinal)));
        }

        return keys;
    }

    /// <summary>Number of dev examples that go with a training set of <paramref name="size"/> examples (30%, at least 1).</summary>
    public static int DevSize(int size) => Math.Max(1, (int)Math.Round(size * SpecParser.DevFraction, MidpointRounding.AwayFromZero));
}

/// <summary>A selection cell: the cell, the method it selects for and the candidate values it tries.</summary>
public sealed record SelectionCell(CellDefinition Cell, string Method, IReadOnlyDictionary<string, string> Candidate);
