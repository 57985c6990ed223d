using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Orchestrator.Data.E2E;
using Orchestrator.Data.Synthetic;
using Orchestrator.Evaluation;

namespace Orchestrator.Benchmarks;

/// <summary>
/// Scoring speed: N segments (default 10,000) with K references each (default 4), built deterministically from the
/// E2E development set (<c>devset.csv</c> of <c>orchestrator data get e2e</c> in the datasets folder; the synthetic
/// E2E-like generator when it is absent): segment i takes MR i mod 547, one of its references as the hypothesis and
/// the next K as references. Each metric runs once to warm up, then <c>--repeat</c> times; the median is reported.
/// Options: <c>--segments N --refs K --repeat R --all --markdown</c>.
/// </summary>
public static class ScoringBenchmark
{
    public static int Run(string[] args)
    {
        var segments = IntOption(args, "--segments", 10_000);
        var refsPerSegment = IntOption(args, "--refs", 4);
        var repeat = IntOption(args, "--repeat", 5);
        var all = args.Contains("--all");
        var markdown = args.Contains("--markdown");

        var (source, groups) = SourceData();
        var hyps = new List<string>(segments);
        var refs = new List<IReadOnlyList<string>>(segments);
        for (var i = 0; i < segments; i++)
        {
            var group = groups[i % groups.Count];
            var round = i / groups.Count;
            hyps.Add(group[round % group.Count]);
            refs.Add(Enumerable.Range(1, refsPerSegment).Select(k => group[(round + k) % group.Count]).ToList());
        }

        var words = hyps.Sum(h => h.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length) + refs.Sum(g => g.Sum(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length));
        var metrics = new List<(string Name, Func<double> Score)>
        {
            ("BLEU (sacreBLEU)", () => SacreBleu.CorpusFromGroups(hyps, refs).Score),
            ("ROUGE-1/2/L/Lsum (rouge_score)", () => Rouge.CorpusMean(hyps, refs).RougeL.FMeasure),
            ("ROUGE with stemmer", () => Rouge.CorpusMean(hyps, refs, useStemmer: true).RougeL.FMeasure),
        };
        if (all)
        {
            metrics.Add(("NIST (mteval-v13a)", () => Nist.Corpus(hyps, refs)));
            metrics.Add(("METEOR (exact+stem)", () => Meteor.Corpus(hyps, refs)));
            metrics.Add(("CIDEr-D", () => CiderD.Corpus(hyps, refs).Score));
            metrics.Add(("TER (tercom)", () => Ter.Corpus(hyps, refs).Score));
        }

        Console.WriteLine($"Scoring {segments:N0} segments × {refsPerSegment} references ({words:N0} words) from {source}");
        Console.WriteLine($"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} logical cores, {RuntimeInformation.ProcessArchitecture}");
        Console.WriteLine($"load average before: {LoadAverage()}");
        var rows = new List<(string Name, double Seconds, double CpuSeconds, double Score)>();
        var process = Process.GetCurrentProcess();
        foreach (var (name, score) in metrics)
        {
            var value = score(); // warm-up (JIT, caches)
            var times = new List<double>();
            var cpu = new List<double>();
            for (var r = 0; r < repeat; r++)
            {
                process.Refresh();
                var cpuBefore = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                value = score();
                times.Add(sw.Elapsed.TotalSeconds);
                process.Refresh();
                cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
            }

            times.Sort();
            cpu.Sort();
            var median = times[times.Count / 2];
            var cpuMedian = cpu[cpu.Count / 2];
            rows.Add((name, median, cpuMedian, value));
            Console.WriteLine($"  {name,-32} {median,8:F3} s wall {cpuMedian,8:F3} s CPU  {segments / median,10:N0} segments/s   (score {value:F4})");
        }

        Console.WriteLine($"load average after: {LoadAverage()}");
        if (markdown)
        {
            Console.WriteLine();
            Console.WriteLine("| metric | median wall time (s) | median CPU time (s) | segments/s (wall) |");
            Console.WriteLine("|---|---:|---:|---:|");
            foreach (var (name, seconds, cpuSeconds, _) in rows)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {seconds:F3} | {cpuSeconds:F3} | {segments / seconds:N0} |"));
            }
        }

        return 0;
    }

    private static (string Source, List<List<string>> Groups) SourceData()
    {
        var devset = Path.Combine(Orchestrator.Core.Paths.OrchestratorHome.DatasetsDirectory().Path, "e2e", "devset.csv");
        if (File.Exists(devset))
        {
            return ($"E2E devset ({devset})", E2eFormat.ReadCsv(devset).Select(e => e.Refs).ToList());
        }

        return ("the synthetic E2E generator (547 MRs, seed 0; no E2E devset: run orchestrator data get e2e)",
            SyntheticE2e.Generate(547, 0).Select(e => e.References.ToList()).ToList());
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static int IntOption(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;
    }
}
