using System.Diagnostics;
using System.Globalization;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.IntegrationTests.Cluster;
using Orchestrator.TestKit;
using Orchestrator.Worker;

namespace Orchestrator.Benchmarks;

/// <summary>
/// Dispatch benchmark of cluster mode, on loopback with real processes: a throwaway PostgreSQL, a coordinator
/// silo and worker silos whose cells are simulated (no training: <c>--simulate-cell-seconds</c>), so that what is
/// measured is the queue, the leases, the grain calls and the result upserts.
/// 1. Throughput: no-op cells, with 1, 2 and 4 worker processes: results persisted per second.
/// 2. Makespan: cells that sleep 1 s on all slots; overhead against the ideal makespan ceil(cells / slots) × 1 s.
/// </summary>
public static class ClusterBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cells = Arg(args, "--cells", 3000);
        var workerCounts = (ArgText(args, "--workers") ?? "1,2,4").Split(',').Select(int.Parse).ToList();
        var slots = Arg(args, "--slots", 16);
        var sleepCells = Arg(args, "--sleep-cells", 10_000);
        var sleepWorkers = Arg(args, "--sleep-workers", 4);
        var sleepSlots = Arg(args, "--sleep-slots", 50);
        var sleepSeconds = Arg(args, "--sleep-seconds", 1);

        var postgres = new PostgresServer();
        await postgres.InitializeAsync();
        try
        {
            Console.WriteLine($"# cluster dispatch benchmark ({Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
            Console.WriteLine();
            Console.WriteLine("| worker processes | slots each | cells | submit s | run s | results persisted / s |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            foreach (var workers in workerCounts)
            {
                var (submit, run) = await SweepAsync(postgres, $"tput{workers}", workers, slots, cells, 0);
                Console.WriteLine($"| {workers} | {slots} | {cells} | {submit:F1} | {run:F1} | {cells / run:F0} |");
            }

            if (sleepCells > 0)
            {
                var totalSlots = sleepWorkers * sleepSlots;
                var ideal = Math.Ceiling(sleepCells / (double)totalSlots) * sleepSeconds;
                var (_, run) = await SweepAsync(postgres, "makespan", sleepWorkers, sleepSlots, sleepCells, sleepSeconds);
                Console.WriteLine();
                Console.WriteLine("| cells × duration | worker processes × slots | ideal makespan s | measured s | overhead |");
                Console.WriteLine("|---|---|---:|---:|---:|");
                Console.WriteLine($"| {sleepCells} × {sleepSeconds} s | {sleepWorkers} × {sleepSlots} | {ideal:F1} | {run:F1} | {(run / ideal - 1) * 100:F1}% |");
            }

            return 0;
        }
        finally
        {
            await postgres.DisposeAsync();
        }
    }

    /// <summary>Runs one sweep; returns (seconds to submit, seconds from submit to the last result).</summary>
    private static async Task<(double Submit, double Run)> SweepAsync(PostgresServer postgres, string name, int workers, int slots, int cells, int cellSeconds)
    {
        await using var cluster = await LocalCluster.CreateAsync(postgres, name);
        await cluster.StartSiloAsync("coordinator", "coordinator");
        var simulate = cellSeconds.ToString(CultureInfo.InvariantCulture);
        await Task.WhenAll(Enumerable.Range(1, workers).Select(i =>
            cluster.StartSiloAsync($"worker-{i}", "worker", "--slots", slots.ToString(CultureInfo.InvariantCulture), "--simulate-cell-seconds", simulate)));
        await cluster.ConnectClientAsync();

        // cells = subsamples × seeds (each at most 1000 in a spec)
        var (subsamples, seeds) = cells <= 1000 ? (1, cells) : (cells / 100, 100);
        if (subsamples * seeds != cells)
        {
            throw new ArgumentException($"--cells above 1000 must be a multiple of 100, got {cells}");
        }

        var spec = $$"""
            name: {{name}}
            dataset: {kind: synthetic-e2e, options: {mrs: 60, seed: 1}, eval_limit: 1}
            model: {preset: test}
            methods: [finetune]
            grid: {sizes: [10], subsamples: {{subsamples}}, seeds: {{seeds}}}
            training: {max_steps: 1, warmup_steps: 0}
            decoding: {strategy: greedy}
            execution: {max_attempts: 3, lease_seconds: 60}
            """;
        var plan = SweepPlanner.PlanText(spec, OrchestratorVocabulary.Default, Path.GetTempPath());
        var clock = Stopwatch.StartNew();
        await cluster.CallAsync(g => SweepSubmitter.SubmitAsync(g, plan));
        var submitted = clock.Elapsed.TotalSeconds;
        var final = await cluster.WaitForCompletionAsync(plan.SweepId, TimeSpan.FromMinutes(30));
        var run = clock.Elapsed.TotalSeconds;
        var rows = await cluster.ResultRowsAsync(plan.SweepId);
        if (final.Done != cells || rows.Rows != cells)
        {
            throw new InvalidOperationException($"{name}: expected {cells} results, got {final.Done} done and {rows.Rows} rows");
        }

        return (submitted, run);
    }

    private static int Arg(string[] args, string name, int fallback) =>
        ArgText(args, name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

    private static string? ArgText(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
