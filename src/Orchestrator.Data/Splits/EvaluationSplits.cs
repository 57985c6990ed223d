using Orchestrator.Data.WebNlg;

namespace Orchestrator.Data.Splits;

/// <summary>
/// A named generalisation split: which inputs may be trained on and which are evaluated.
/// A dataset read from one file is split by a hash of each input's text (about 80% training pool); an input
/// whose topic is never trainable in this split goes entirely to evaluation. A dataset with separate training and
/// test files trains on the training file and evaluates on the test file. Either way, <see cref="Trainable"/>
/// filters the pool and <see cref="Evaluated"/> the evaluation set.
/// </summary>
/// <param name="Name">The name a spec uses in <c>dataset.splits</c>.</param>
/// <param name="Description">One line for <c>data stats</c> and the docs.</param>
/// <param name="Trainable">Inputs that may be in the training pool.</param>
/// <param name="Evaluated">Inputs that belong to this split's evaluation set.</param>
public sealed record EvaluationSplit(string Name, string Description, Func<DataEntry, bool> Trainable, Func<DataEntry, bool> Evaluated);

/// <summary>The splits each dataset kind offers (<c>default</c> always exists).</summary>
public static class EvaluationSplits
{
    public const string Default = "default";

    /// <summary>XSUM topics (first word of the normalised topic) that count as sports.</summary>
    public static IReadOnlySet<string> SportsTopics { get; } = new HashSet<string>(StringComparer.Ordinal) { "sport", "sports" };

    /// <summary>XSUM news topics trained on in the <c>within-news</c> split (Li &amp; Liang 2021, §6.4).</summary>
    public static IReadOnlySet<string> WithinNewsTrainTopics { get; } = new HashSet<string>(StringComparer.Ordinal) { "world", "uk", "business" };

    /// <summary>The option of the generic JSONL reader that names held-out topics (comma-separated).</summary>
    public const string HoldoutTopicsOption = "holdout_topics";

    /// <summary>Every split of <paramref name="kind"/> (with these reader options), <c>default</c> first.</summary>
    public static IReadOnlyList<EvaluationSplit> For(string kind, IReadOnlyDictionary<string, string> options)
    {
        static bool Any(DataEntry _) => true;
        switch (kind)
        {
            case DatasetCatalog.Webnlg:
            {
                static bool Seen(DataEntry e) => WebNlgFormat.IsSeen(e.Category);
                return
                [
                    new(Default, "same as 'all'", Seen, Any),
                    new("seen", "test inputs of the 10 training categories (S)", Seen, Seen),
                    new("unseen", "test inputs of the 5 categories never trained on (U)", Seen, e => !Seen(e)),
                    new("all", "every test input (A)", Seen, Any),
                ];
            }

            case DatasetCatalog.Xsum:
                return
                [
                    new(Default, "all topics, inputs split by hash", Any, Any),
                    new("news-to-sports", "train on news, evaluate on sports", e => !IsSports(e), IsSports),
                    new("within-news", "train on world, UK and business news, evaluate on the other news topics",
                        IsWithinNewsTrain, e => !IsSports(e) && !IsWithinNewsTrain(e)),
                ];

            case DatasetCatalog.Jsonl when HoldoutTopics(options) is { Count: > 0 } heldOut:
            {
                bool Held(DataEntry e) => e.Category is not null && heldOut.Contains(NormaliseTopic(e.Category));
                bool Trainable(DataEntry e) => !Held(e);
                return
                [
                    new(Default, "same as 'all'", Trainable, Any),
                    new("seen", "evaluate on the topics that are trained on", Trainable, Trainable),
                    new("unseen", $"evaluate on the held-out topics ({string.Join(", ", heldOut.Order(StringComparer.Ordinal))})", Trainable, Held),
                    new("all", "evaluate on every topic (held-out topics are never trained on)", Trainable, Any),
                ];
            }

            default:
                return [new(Default, "inputs split by hash", Any, Any)];
        }
    }

    /// <summary>The split called <paramref name="name"/>, or null if the kind has none by that name.</summary>
    public static EvaluationSplit? Find(string kind, IReadOnlyDictionary<string, string> options, string name) =>
        For(kind, options).FirstOrDefault(s => s.Name == name);

    /// <summary>Lower-cased, trimmed; a leading <c>news/</c> is dropped (BBC URL style).</summary>
    public static string NormaliseTopic(string topic)
    {
        var t = topic.Trim().ToLowerInvariant();
        return t.StartsWith("news/", StringComparison.Ordinal) ? t[5..] : t;
    }

    /// <summary>The first word of a normalised topic (split at <c>-</c>, <c>/</c>, <c>_</c> or a space): <c>world-europe</c> → <c>world</c>.</summary>
    public static string TopicFamily(string topic)
    {
        var t = NormaliseTopic(topic);
        var cut = t.IndexOfAny(['-', '/', '_', ' ']);
        return cut < 0 ? t : t[..cut];
    }

    public static bool IsSports(DataEntry e) => e.Category is not null && SportsTopics.Contains(TopicFamily(e.Category));

    public static bool IsWithinNewsTrain(DataEntry e) => e.Category is not null && WithinNewsTrainTopics.Contains(TopicFamily(e.Category));

    /// <summary>The normalised topics of the <c>holdout_topics</c> option (empty when absent).</summary>
    public static IReadOnlySet<string> HoldoutTopics(IReadOnlyDictionary<string, string> options) =>
        options.TryGetValue(HoldoutTopicsOption, out var text)
            ? text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(NormaliseTopic).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>(StringComparer.Ordinal);
}
