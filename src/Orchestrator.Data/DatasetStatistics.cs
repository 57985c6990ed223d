using Orchestrator.Core.Cells;
using Orchestrator.Data.Splits;
using Orchestrator.Data.WebNlg;

namespace Orchestrator.Data;

/// <summary>Counts of one part (or one category within a part): inputs and references.</summary>
/// <param name="Part"><c>all</c>, <c>train</c>, <c>dev</c> or <c>test</c>.</param>
/// <param name="Category">The category or topic; null for the part's total.</param>
/// <param name="Group">What the category is for the splits: <c>seen</c>/<c>unseen</c> (WebNLG), <c>sports</c>/<c>news</c> (XSUM), <c>held-out</c>/<c>trained</c> (JSONL); null if not applicable.</param>
public sealed record CategoryCount(string Part, string? Category, string? Group, int Entries, int References);

/// <summary>What one split trains on and evaluates (evaluation inputs after merging identical inputs, no <c>eval_limit</c>).</summary>
public sealed record SplitCount(string Split, string Description, int PoolEntries, int TrainingExamples, int EvalEntries, int EvalReferences);

/// <summary>The numbers <c>orchestrator data stats</c> prints.</summary>
public sealed record DatasetStatistics(
    string Kind,
    string? Path,
    string ContentHash,
    IReadOnlyList<CategoryCount> Parts,
    IReadOnlyList<CategoryCount> Categories,
    IReadOnlyList<SplitCount> Splits,
    IReadOnlyList<string> Notes)
{
    public static DatasetStatistics Compute(DatasetIdentity id)
    {
        var contents = DatasetCatalog.ReadContents(id);
        var parts = contents.Parts
            .Select(p => new CategoryCount(p.Name, null, null, p.Entries.Count, p.Entries.Sum(e => e.References.Count)))
            .ToList();
        var categories = contents.Parts
            .SelectMany(p => p.Entries.Where(e => e.Category is not null).GroupBy(e => e.Category!, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new CategoryCount(p.Name, g.Key, Group(id, g.First()), g.Count(), g.Sum(e => e.References.Count))))
            .ToList();
        var data = DatasetCatalog.Build(contents, id.Options, evalLimit: null);
        var splits = EvaluationSplits.For(id.Kind, id.Options)
            .Select(s =>
            {
                var view = data.ForSplit(s.Name);
                return new SplitCount(s.Name, s.Description, view.TrainPool.Count, view.TrainingExamples.Count, view.Eval.Count, view.Eval.Sum(e => e.References.Count));
            })
            .ToList();
        return new DatasetStatistics(id.Kind, id.Path, contents.ContentHash, parts, categories, splits, contents.Notes);
    }

    private static string? Group(DatasetIdentity id, DataEntry sample) => id.Kind switch
    {
        DatasetCatalog.Webnlg => WebNlgFormat.IsSeen(sample.Category) ? "seen" : "unseen",
        DatasetCatalog.Xsum => EvaluationSplits.IsSports(sample) ? "sports" : EvaluationSplits.IsWithinNewsTrain(sample) ? "news (within-news training)" : "news",
        DatasetCatalog.Jsonl when EvaluationSplits.HoldoutTopics(id.Options) is { Count: > 0 } held =>
            held.Contains(EvaluationSplits.NormaliseTopic(sample.Category!)) ? "held-out" : "trained",
        _ => null,
    };
}
