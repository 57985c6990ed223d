namespace Orchestrator.Data;

/// <summary>One input with all its references (an E2E meaning representation, a WebNLG triple set, …).</summary>
/// <param name="Id">Stable id within the dataset.</param>
/// <param name="Source">The linearised input the model sees (e.g. <c>name : The Eagle | eatType : pub</c>).</param>
/// <param name="References">Every reference text for this input.</param>
/// <param name="Category">Topic or category for generalisation splits, if any.</param>
public sealed record DataEntry(string Id, string Source, IReadOnlyList<string> References, string? Category = null);

/// <summary>A training pair: one input with one of its references.</summary>
public sealed record TrainingExample(string Id, string EntryId, string Source, string Target);

/// <summary>A dataset split into a training pool and an evaluation set that shares no input with it.</summary>
public sealed record LoadedDataset(string Kind, string ContentHash, IReadOnlyList<DataEntry> TrainPool, IReadOnlyList<DataEntry> Eval)
{
    private IReadOnlyList<TrainingExample>? _examples;
    private Dictionary<string, TrainingExample>? _byId;

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
