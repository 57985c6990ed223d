using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Data;
using Orchestrator.Evaluation;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator score --hyp FILE --refs FILE [FILE...] [--metrics bleu,rouge,...] [--stem] [--format json|text]</c>:
/// scores a system output file against reference files, one segment per line (split on <c>\n</c> only; reference
/// files are padded with empty lines where a segment has fewer references). Files of different lengths are an error.
/// </summary>
public static class ScoreCommand
{
    /// <summary>Metric names <c>--metrics</c> accepts, in output order.</summary>
    public static IReadOnlyList<string> Metrics { get; } = ["bleu", "rouge", "nist", "meteor", "meteor-coco", "cider", "ter", "e2e-bleu"];

    public static void Register(RootCommand root)
    {
        var hyp = new Option<string>("--hyp") { Description = "System outputs, one segment per line (UTF-8)", Required = true };
        var refs = new Option<string[]>("--refs")
        {
            Description = "Reference files, each as long as --hyp; an empty line means no reference of that file for the segment",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var metrics = new Option<string[]>("--metrics")
        {
            Description = $"Comma-separated metrics: {string.Join(", ", Metrics)} (default bleu,rouge)",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => ["bleu,rouge"],
        };
        var stem = new Option<bool>("--stem") { Description = "ROUGE with rouge_score's Porter stemmer (use_stemmer=True)" };
        var format = new Option<string>("--format") { Description = "Output format: json or text", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("json", "text");

        var command = new Command("score", "Score system outputs against references (sacreBLEU-exact BLEU, rouge_score ROUGE, NIST, METEOR, CIDEr, TER).");
        foreach (var o in new Option[] { hyp, refs, metrics, stem, format })
        {
            command.Options.Add(o);
        }

        command.SetAction(pr =>
        {
            try
            {
                var names = ParseMetrics(pr.GetValue(metrics) ?? []);
                var (hypotheses, groups) = ReadSegments(pr.GetValue(hyp)!, pr.GetValue(refs)!);
                var result = Score(hypotheses, groups, names, pr.GetValue(stem));
                Console.Write(pr.GetValue(format) == "json"
                    ? result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"
                    : ToText(result));
                return 0;
            }
            catch (Exception ex) when (ex is DatasetException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return CliApp.ExitInvalidInput;
            }
        });
        root.Subcommands.Add(command);
    }

    /// <summary>Splits and checks <c>--metrics</c> (comma-separated and/or repeated).</summary>
    public static IReadOnlyList<string> ParseMetrics(IEnumerable<string> values)
    {
        var names = values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(v => v.ToLowerInvariant())
            .Distinct(StringComparer.Ordinal)
            .ToList();
        foreach (var name in names.Where(n => !Metrics.Contains(n)))
        {
            throw new ArgumentException($"--metrics: unknown metric '{name}'{Orchestrator.Core.Specs.Suggestion.DidYouMean(name, Metrics)} (known: {string.Join(", ", Metrics)})");
        }

        return names.Count == 0 ? throw new ArgumentException("--metrics: name at least one metric") : names;
    }

    /// <summary>
    /// Reads the hypothesis file and the reference files (lines split on '\n' only, the empty piece after a final
    /// newline dropped) and groups the non-empty references of each segment.
    /// </summary>
    public static (List<string> Hypotheses, List<IReadOnlyList<string>> Groups) ReadSegments(string hypPath, IReadOnlyList<string> refPaths)
    {
        var hypotheses = ReadLines(hypPath);
        var streams = refPaths.Select(p => (Path: p, Lines: ReadLines(p))).ToList();
        foreach (var (path, lines) in streams)
        {
            if (lines.Count != hypotheses.Count)
            {
                throw new DatasetException($"{path} has {lines.Count} line(s) but {hypPath} has {hypotheses.Count}; every reference file needs one line per segment (pad with empty lines)");
            }
        }

        if (hypotheses.Count == 0)
        {
            throw new DatasetException($"{hypPath}: no segments (the file is empty)");
        }

        var groups = new List<IReadOnlyList<string>>(hypotheses.Count);
        for (var i = 0; i < hypotheses.Count; i++)
        {
            var group = streams.Select(s => s.Lines[i]).Where(r => r.Length > 0).ToList();
            if (group.Count == 0)
            {
                throw new DatasetException($"segment {i + 1} (line {i + 1}) has no reference: its line is empty in every reference file");
            }

            groups.Add(group);
        }

        return (hypotheses, groups);
    }

    /// <summary>All requested metrics as a JSON object (see docs/data-and-metrics.md for the fields).</summary>
    public static JsonObject Score(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> groups, IReadOnlyList<string> metrics, bool stem)
    {
        var json = new JsonObject
        {
            ["n_segments"] = hypotheses.Count,
            ["n_references"] = groups.Sum(g => g.Count),
        };
        foreach (var metric in Metrics.Where(metrics.Contains))
        {
            switch (metric)
            {
                case "bleu":
                {
                    var b = SacreBleu.CorpusFromGroups(hypotheses, groups);
                    json["bleu"] = new JsonObject
                    {
                        ["score"] = b.Score,
                        ["counts"] = new JsonArray([.. b.Counts.Select(c => (JsonNode)c)]),
                        ["totals"] = new JsonArray([.. b.Totals.Select(c => (JsonNode)c)]),
                        ["precisions"] = new JsonArray([.. b.Precisions.Select(c => (JsonNode)c)]),
                        ["bp"] = b.BrevityPenalty,
                        ["sys_len"] = b.SysLen,
                        ["ref_len"] = b.RefLen,
                        ["signature"] = b.Signature,
                        ["formatted"] = b.FormatWithSignature(),
                    };
                    break;
                }

                case "rouge":
                {
                    var r = Rouge.CorpusMean(hypotheses, groups, stem);
                    foreach (var name in RougeScores.MetricNames)
                    {
                        var s = r[name];
                        json[name] = new JsonObject { ["precision"] = s.Precision, ["recall"] = s.Recall, ["fmeasure"] = s.FMeasure };
                    }

                    json["rouge_stemmer"] = stem;
                    break;
                }

                case "nist":
                    json["nist"] = new JsonObject { ["score"] = Nist.Corpus(hypotheses, groups), ["implementation"] = "mteval-v13a-sig.pl (e2e-metrics), 5-grams" };
                    break;
                case "meteor":
                case "meteor-coco":
                {
                    var options = new MeteorOptions { Preprocessing = metric == "meteor" ? MeteorPreprocessing.None : MeteorPreprocessing.CocoPtb };
                    var m = new Meteor(options).CorpusStatistics(hypotheses, groups);
                    json[metric.Replace('-', '_')] = new JsonObject
                    {
                        ["score"] = m.Score,
                        ["precision"] = m.Precision,
                        ["recall"] = m.Recall,
                        ["fmean"] = m.FMean,
                        ["fragmentation_penalty"] = m.FragmentationPenalty,
                        ["modules"] = "exact stem",
                        ["implementation"] = "METEOR 1.5 -l en -norm -m 'exact stem'" + (metric == "meteor" ? "" : " after PTB tokenisation (pycocoevalcap)"),
                    };
                    break;
                }

                case "cider":
                    json["cider"] = new JsonObject { ["score"] = CiderD.Corpus(hypotheses, groups).Score, ["implementation"] = "CIDEr-D, pycocoevalcap (e2e-metrics)" };
                    break;
                case "ter":
                {
                    // ×100 as sacreBLEU prints TER and as results store it (tercom itself prints 0–1).
                    var t = Ter.Corpus(hypotheses, groups);
                    json["ter"] = new JsonObject
                    {
                        ["score"] = 100.0 * t.Score, ["edits"] = t.Edits, ["ref_words"] = t.ReferenceWords, ["implementation"] = "tercom 0.7.25 defaults, ×100",
                    };
                    break;
                }

                case "e2e-bleu":
                    json["e2e_bleu"] = new JsonObject { ["score"] = E2eChallengeBleu.Corpus(hypotheses, groups), ["implementation"] = "e2e-metrics pymteval BLEUScore (0-1)" };
                    break;
            }
        }

        return json;
    }

    private static string ToText(JsonObject r)
    {
        var sb = new StringBuilder();
        string F(JsonNode? n, int decimals = 4) => PythonText.FormatFixed(n!.GetValue<double>(), decimals);
        sb.Append(CultureInfo.InvariantCulture, $"segments: {r["n_segments"]}, references: {r["n_references"]}\n");
        if (r["bleu"] is JsonObject bleu)
        {
            sb.Append(bleu["formatted"]!.GetValue<string>()).Append('\n');
        }

        foreach (var name in RougeScores.MetricNames)
        {
            if (r[name] is JsonObject rouge)
            {
                var label = name.Replace("rouge", "ROUGE-", StringComparison.Ordinal);
                sb.Append(CultureInfo.InvariantCulture,
                    $"{label,-11} P = {F(rouge["precision"])}  R = {F(rouge["recall"])}  F = {F(rouge["fmeasure"])}{(r["rouge_stemmer"]!.GetValue<bool>() ? "  (stemmed)" : "")}\n");
            }
        }

        foreach (var (key, label) in new[] { ("nist", "NIST"), ("meteor", "METEOR"), ("meteor_coco", "METEOR-COCO"), ("cider", "CIDEr"), ("ter", "TER"), ("e2e_bleu", "E2E-BLEU") })
        {
            if (r[key] is JsonObject m)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{label,-11} = {F(m["score"])}  [{m["implementation"]!.GetValue<string>()}]\n");
            }
        }

        return sb.ToString();
    }

    private static List<string> ReadLines(string path)
    {
        if (!File.Exists(path))
        {
            throw new DatasetException($"{path}: file not found");
        }

        var lines = TextFiles.ReadUtf8(path).Split('\n').ToList();
        if (lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }
}
