using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;

namespace Orchestrator.Data;

/// <summary>A spec turned into work: its identities resolved and its cells expanded, ready to submit.</summary>
public sealed record SweepPlan(
    SweepSpec Spec,
    string SpecYaml,
    string SpecHash,
    DatasetIdentity Dataset,
    ModelIdentity Model,
    IReadOnlyList<CellDefinition> Cells)
{
    /// <summary>A sweep's id: its name plus a short hash of the spec text, so an edited spec is a new sweep.</summary>
    public string SweepId => $"{Spec.Name}-{SpecHash[..10]}";
}

/// <summary>
/// Parses, validates and plans a sweep: spec checks, then the checks that need the data (sizes that do not
/// fit the pool, an empty evaluation set), each reported with the spec field's path. Nothing is queued here.
/// </summary>
public static class SweepPlanner
{
    public static SweepPlan PlanFile(string specPath, SpecVocabulary vocabulary)
    {
        var spec = SpecParser.ParseFile(specPath, vocabulary);
        var yaml = File.ReadAllText(specPath);
        return Plan(spec, yaml, Path.GetDirectoryName(Path.GetFullPath(specPath))!, specPath);
    }

    public static SweepPlan PlanText(string yaml, SpecVocabulary vocabulary, string baseDirectory, string source = "<inline>") =>
        Plan(SpecParser.Parse(yaml, vocabulary, source), yaml, baseDirectory, source);

    private static SweepPlan Plan(SweepSpec spec, string yaml, string baseDirectory, string source)
    {
        DatasetIdentity dataset;
        LoadedDataset data;
        try
        {
            dataset = DatasetCatalog.Resolve(spec.Dataset, baseDirectory);
            data = DatasetCatalog.Load(dataset);
        }
        catch (DatasetException ex)
        {
            var field = ex.Message.StartsWith("dataset.", StringComparison.Ordinal) ? ex.Message[..ex.Message.IndexOf(':')] : "dataset";
            var message = field == "dataset" ? ex.Message : ex.Message[(field.Length + 1)..].Trim();
            throw new SpecValidationException(source, [new SpecError(field, message)]);
        }

        var errors = new List<SpecError>();
        var pool = data.TrainingExamples.Count;
        for (var i = 0; i < spec.Grid.Sizes.Count; i++)
        {
            var size = spec.Grid.Sizes[i];
            var dev = CellExpander.DevSize(size);
            if (size + dev > pool)
            {
                errors.Add(new SpecError($"grid.sizes[{i}]",
                    $"size {size} is impossible: it needs {size} training + {dev} dev examples, but the training pool has {pool}"));
            }
        }

        if (data.Eval.Count == 0)
        {
            errors.Add(new SpecError("dataset", "the evaluation set is empty"));
        }

        if (errors.Count > 0)
        {
            throw new SpecValidationException(source, errors);
        }

        var model = ResolveModel(spec.Model, baseDirectory, source);
        var normalized = yaml.Replace("\r\n", "\n");
        var cells = CellExpander.Expand(spec, dataset, model);
        return new SweepPlan(spec, normalized, ContentHash.Of(normalized), dataset, model, cells);
    }

    private static ModelIdentity ResolveModel(ModelSpec spec, string baseDirectory, string source)
    {
        if (spec.Preset is { } preset)
        {
            return new ModelIdentity(preset, null, spec.InitSeed, ContentHash.Of($"preset:{preset}|init_seed:{spec.InitSeed}"));
        }

        var path = Path.GetFullPath(Path.Combine(baseDirectory, spec.Path!));
        if (!Directory.Exists(path))
        {
            throw new SpecValidationException(source, [new SpecError("model.path", $"checkpoint folder not found: {path}")]);
        }

        return new ModelIdentity(null, path, spec.InitSeed, ContentHash.OfDirectory(path));
    }
}
