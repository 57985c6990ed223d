namespace Orchestrator.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project tests/Orchestrator.Benchmarks -- BENCHMARK [options]</c>. The first argument
/// picks the benchmark; each area adds its own entry to <see cref="Benchmarks"/>.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Description, Func<string[], int> Run)> Benchmarks = new(StringComparer.Ordinal)
    {
        ["scoring"] = ("corpus metrics on 10,000 segments with 4 references (BLEU, ROUGE-1/2/L; --all adds NIST, METEOR, CIDEr, TER)", ScoringBenchmark.Run),
        ["training"] = ("fp32 matmul peak; tokens/s, share of peak and memory of finetune/prefix/lora training on the tiny and gpt2 shapes", TrainingBenchmark.Run),
        ["packing"] = ("packed against sequential training of K = 1..16 prefix/lora trials on the tiny and gpt2 shapes (trial-steps/s, speed-up, share of peak)", PackingBenchmark.Run),
        ["cluster"] = ("cluster dispatch on loopback: results persisted/s with 1, 2, 4 worker processes; makespan overhead of 10,000 sleeping cells", args => ClusterBenchmark.RunAsync(args).GetAwaiter().GetResult()),
        ["web"] = ("the results page on stored sweeps of 2,000 and 100,000 cells: each API request (p50/p95) and each page's load in headless Chromium (--cells, --iterations)",
            args => WebBenchmark.RunAsync(args).GetAwaiter().GetResult()),
        ["results"] = ("aggregate and paired-comparison latency (p50/p95) over 100,000 result rows in PostgreSQL", args => ResultsBenchmark.RunAsync(args).GetAwaiter().GetResult()),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var benchmark))
        {
            Console.Error.WriteLine("usage: dotnet run -c Release --project tests/Orchestrator.Benchmarks -- BENCHMARK [options]");
            foreach (var (name, (description, _)) in Benchmarks)
            {
                Console.Error.WriteLine($"  {name,-10} {description}");
            }

            return 2;
        }

        return benchmark.Run(args[1..]);
    }
}
