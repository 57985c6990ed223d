using Orchestrator.Evaluation;

namespace Orchestrator.Worker;

/// <summary>
/// The metrics a spec can name, and the scores each produces. Scores are on the scale papers report them:
/// BLEU, ROUGE (F-measure), METEOR and TER ×100; NIST and CIDEr as they come. See docs/data-and-metrics.md.
/// </summary>
public static class MetricSuite
{
    public static IReadOnlyCollection<string> Names { get; } =
        ["bleu", "e2e-bleu", "rouge", "rouge-stem", "nist", "meteor", "meteor-coco", "cider", "ter"];

    /// <summary>The score names a metric produces (what result rows and tables carry).</summary>
    public static IReadOnlyList<string> OutputsOf(string metric) => metric switch
    {
        "bleu" => ["bleu"],
        "e2e-bleu" => ["e2e_bleu"],
        "rouge" => ["rouge1", "rouge2", "rougeL", "rougeLsum"],
        "rouge-stem" => ["rouge1_stem", "rouge2_stem", "rougeL_stem", "rougeLsum_stem"],
        "nist" => ["nist"],
        "meteor" => ["meteor"],
        "meteor-coco" => ["meteor_coco"],
        "cider" => ["cider"],
        "ter" => ["ter"],
        _ => throw new ArgumentException($"unknown metric '{metric}' (known: {string.Join(", ", Names)})", nameof(metric)),
    };

    public static IEnumerable<(string Name, double Value)> Score(string metric, IReadOnlyList<string> outputs, IReadOnlyList<IReadOnlyList<string>> references)
    {
        switch (metric)
        {
            case "bleu":
                // sacreBLEU 2.6.0 defaults, 0–100.
                yield return ("bleu", SacreBleu.CorpusFromGroups(outputs, references).Score);
                break;
            case "e2e-bleu":
                // The E2E challenge's BLEU (e2e-metrics pymteval: case-insensitive, no smoothing), ×100.
                yield return ("e2e_bleu", 100.0 * E2eChallengeBleu.Corpus(outputs, references));
                break;
            case "rouge":
            case "rouge-stem":
            {
                // rouge_score F-measures (best reference per segment, mean over segments), ×100.
                var stem = metric == "rouge-stem";
                var r = Rouge.CorpusMean(outputs, references, useStemmer: stem);
                var suffix = stem ? "_stem" : "";
                yield return ("rouge1" + suffix, 100.0 * r.Rouge1.FMeasure);
                yield return ("rouge2" + suffix, 100.0 * r.Rouge2.FMeasure);
                yield return ("rougeL" + suffix, 100.0 * r.RougeL.FMeasure);
                yield return ("rougeLsum" + suffix, 100.0 * r.RougeLsum.FMeasure);
                break;
            }

            case "nist":
                // mteval-v13a NIST as the E2E scripts run it (5-grams).
                yield return ("nist", Nist.Corpus(outputs, references));
                break;
            case "meteor":
                // METEOR 1.5 exact+stem stages, -norm, ×100 (WebNLG-style input: the text as is).
                yield return ("meteor", 100.0 * Meteor.Corpus(outputs, references));
                break;
            case "meteor-coco":
                // The same after the MS-COCO/E2E PTB tokenisation and punctuation removal, ×100.
                yield return ("meteor_coco", 100.0 * Meteor.Corpus(outputs, references, new MeteorOptions { Preprocessing = MeteorPreprocessing.CocoPtb }));
                break;
            case "cider":
                // CIDEr-D as pycocoevalcap (E2E challenge) computes it.
                yield return ("cider", CiderD.Corpus(outputs, references).Score);
                break;
            case "ter":
                // tercom 0.7.25 TER (lower is better), ×100.
                yield return ("ter", 100.0 * Ter.Corpus(outputs, references).Score);
                break;
            default:
                throw new ArgumentException($"unknown metric '{metric}' (known: {string.Join(", ", Names)})", nameof(metric));
        }
    }
}
