using Orchestrator.Evaluation;

namespace Orchestrator.Worker;

/// <summary>The metrics a spec can name, and the scores each produces (BLEU on the 0–100 scale).</summary>
public static class MetricSuite
{
    public static IReadOnlyCollection<string> Names { get; } = ["bleu"];

    public static IEnumerable<(string Name, double Value)> Score(string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references)
    {
        switch (metric)
        {
            case "bleu":
                yield return ("bleu", SacreBleu.CorpusFromGroups(outputs, references).Score);
                break;
            default:
                throw new ArgumentException($"unknown metric '{metric}' (known: {string.Join(", ", Names)})", nameof(metric));
        }
    }
}
