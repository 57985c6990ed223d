namespace Orchestrator.Data;

/// <summary>One input with all its references (an E2E meaning representation, a WebNLG triple set, …).</summary>
/// <param name="Id">Stable id within the dataset.</param>
/// <param name="Source">The linearised input the model sees (e.g. <c>name : The Eagle | eatType : pub</c>).</param>
/// <param name="References">Every reference text for this input.</param>
/// <param name="Category">Topic or category for generalisation splits, if any.</param>
public sealed record DataEntry(string Id, string Source, IReadOnlyList<string> References, string? Category = null);

/// <summary>A training pair: one input with one of its references.</summary>
public sealed record TrainingExample(string Id, string EntryId, string Source, string Target);

/// <summary>
/// A dataset split into a training pool and an evaluation set that shares no input with it. This object is the
/// dataset's default split (<see cref="Split"/>); <see cref="ForSplit"/> gives the view of another named split
/// (WebNLG <c>seen</c>/<c>unseen</c>/<c>all</c>, XSUM <c>news-to-sports</c>, …), whose evaluation set differs and
/// whose training pool is a subset of this one's (so <see cref="Example"/> finds every id of every split's manifest).
/// </summary>
public sealed record LoadedDataset(string Kind, string ContentHash, IReadOnlyList<DataEntry> TrainPool, IReadOnlyList<DataEntry> Eval)
{
    private IReadOnlyList<TrainingExample>? _examples;
    private Dictionary<string, TrainingExample>? _byId;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, LoadedDataset> _views = new(StringComparer.Ordinal);

    /// <summary>The split this view is (<c>default</c> unless it came from <see cref="ForSplit"/>).</summary>
    public string Split { get; init; } = "default";

    /// <summary>Every split name this dataset accepts, <c>default</c> first.</summary>
    public IReadOnlyList<string> SplitNames { get; init; } = ["default"];

    /// <summary>Builds the view of another split (set by <see cref="DatasetCatalog"/>); null for single-split data.</summary>
    internal Func<string, LoadedDataset>? SplitFactory { get; init; }

    /// <summary>The training pool and evaluation set of the named split (this object for <c>default</c>).</summary>
    public LoadedDataset ForSplit(string split)
    {
        ArgumentNullException.ThrowIfNull(split);
        if (split == Split)
        {
            return this;
        }

        if (!SplitNames.Contains(split))
        {
            throw new DatasetException($"dataset {Kind} ({ContentHash[..Math.Min(12, ContentHash.Length)]}) has no split '{split}' (known: {string.Join(", ", SplitNames)})");
        }

        var factory = SplitFactory ?? throw new DatasetException($"dataset {Kind} cannot build split '{split}'");
        return _views.GetOrAdd(split, factory);
    }

    /// <summary>The evaluation set of a split: one entry per distinct input, each with all its references.</summary>
    public IReadOnlyList<DataEntry> EvalFor(string split) => ForSplit(split).Eval;

    /// <summary>Training examples: every (input, reference) pair of the training pool, ids <c>entry/r{k}</c>.</summary>
    public IReadOnlyList<TrainingExample> TrainingExamples => _examples ??= TrainPool
        .SelectMany(e => e.References.Select((r, k) => new TrainingExample($"{e.Id}/r{k}", e.Id, e.Source, r)))
        .ToList();

    public TrainingExample Example(string id)
    {
        _byId ??= TrainingExamples.ToDictionary(x => x.Id, StringComparer.Ordinal);
        return _byId.TryGetValue(id, out var ex) ? ex : throw new KeyNotFoundException($"no training example '{id}' in dataset {Kind} ({ContentHash[..12]})");
    }
}

/// <summary>Bad or unreadable data, with the file and (where known) line or entry.</summary>
public sealed class DatasetException(string message, Exception? inner = null) : Exception(message, inner);
