using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Cells;

/// <summary>
/// Expands a validated spec into its cells: split × method × size × subsample × seed, in that (stable) order.
/// The dataset and model identities (content hashes) are resolved by the caller, who can read files.
/// </summary>
public static class CellExpander
{
    public const string ManifestAlgorithm = "rank-sha256/1";
    public const string TrainingPool = "train";

    public static IReadOnlyList<CellDefinition> Expand(SweepSpec spec, DatasetIdentity dataset, ModelIdentity model)
    {
        var decoding = spec.Decoding.Strategy == "greedy"
            ? new DecodingSettings("greedy", 1, spec.Decoding.MaxNewTokens, spec.Decoding.MinNewTokens)
            : new DecodingSettings(spec.Decoding.Strategy, spec.Decoding.BeamSize, spec.Decoding.MaxNewTokens, spec.Decoding.MinNewTokens);
        var manifest = new ManifestIdentity(ManifestAlgorithm, TrainingPool, spec.Grid.ManifestSeed, spec.Grid.Nested, SpecParser.DevFraction);

        var cells = new List<CellDefinition>();
        foreach (var split in spec.Dataset.Splits)
        {
            foreach (var method in spec.Methods)
            {
                foreach (var size in spec.Grid.Sizes)
                {
                    var t = method.TrainingOr(spec.Training);
                    var training = new TrainingSettings(t.LearningRate, t.BatchSize, t.MaxStepsFor(size), t.WarmupSteps, t.EvalEvery, t.WeightDecay);
                    for (var subsample = 0; subsample < spec.Grid.Subsamples; subsample++)
                    {
                        foreach (var seed in spec.Grid.Seeds)
                        {
                            cells.Add(new CellDefinition(
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
                                decoding));
                        }
                    }
                }
            }
        }

        return cells;
    }

    /// <summary>Number of dev examples that go with a training set of <paramref name="size"/> examples (30%, at least 1).</summary>
    public static int DevSize(int size) => Math.Max(1, (int)Math.Round(size * SpecParser.DevFraction, MidpointRounding.AwayFromZero));
}
