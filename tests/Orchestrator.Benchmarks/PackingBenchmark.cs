using System.Diagnostics;
using System.Globalization;
using Orchestrator.Data.Synthetic;
using Orchestrator.Training;
using Orchestrator.Training.Models;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>
/// <c>packing [--shapes tiny,gpt2] [--methods prefix,lora] [--ks 1,2,4,8,16] [--gpt2-ks 1,2,4,8] [--batch 10] [--steps 30] [--gpt2-steps 3]</c>:
/// for each shape, method and K, the same K low-data trials (synthetic E2E-like pairs, batch 10 as in the paper's
/// low-data runs, different seeds) trained one after another and then packed (<see cref="PackedTrainer"/>) on one frozen
/// base in the same process, side by side: trial-steps per second of each and the speed-up, plus the packed run's
/// achieved GFLOP/s as a share of the fp32 matmul peak measured in the same run (FLOPs per token of a frozen base:
/// 4·P + 12·L·T·d, as in the training benchmark).
/// </summary>
public static class PackingBenchmark
{
    public static int Run(string[] args)
    {
        string[] shapes = TrainingBenchmark.Option(args, "--shapes", "tiny,gpt2").Split(',');
        string[] methods = TrainingBenchmark.Option(args, "--methods", "prefix,lora").Split(',');
        int[] ks = Ints(TrainingBenchmark.Option(args, "--ks", "1,2,4,8,16"));
        int[] gpt2Ks = Ints(TrainingBenchmark.Option(args, "--gpt2-ks", "1,2,4,8"));
        int batch = int.Parse(TrainingBenchmark.Option(args, "--batch", "10"), CultureInfo.InvariantCulture);
        int steps = int.Parse(TrainingBenchmark.Option(args, "--steps", "30"), CultureInfo.InvariantCulture);
        int gpt2Steps = int.Parse(TrainingBenchmark.Option(args, "--gpt2-steps", "3"), CultureInfo.InvariantCulture);

        TorchRuntime.EnsureAvailable();
        var tokenizer = BpeTrainer.Train(PretrainCorpus.Generate(2000, 0), 1024);
        if (args.Contains("--profile"))
        {
            return Profile(tokenizer);
        }

        if (args.Contains("--drift"))
        {
            return Drift(tokenizer, args);
        }

        var pool = SyntheticE2e.Generate(400, 7).Select(e => new TrainingExample(e.Source, e.References[0])).ToList();
        double meanTokens = pool.Average(e => CausalLmFormat.Encode(tokenizer, e.Source, e.Target, 1024).InputIds.Length);
        double peak = TrainingBenchmark.MatmulPeak().Best;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"device: {TorchRuntime.Describe()}; {Environment.ProcessorCount} cores; batch {batch}; mean sequence {meanTokens:F0} tokens; fp32 matmul peak {peak:F1} GFLOP/s; load average {TrainingBenchmark.LoadAverage()}"));
        Console.WriteLine();
        Console.WriteLine("| shape | method | K | sequential trial-steps/s | packed trial-steps/s | speed-up | packed GFLOP/s | % of peak |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (string shape in shapes)
        {
            var config = Gpt2Config.Preset(shape, shape == "gpt2" ? 50257 : tokenizer.VocabSize);
            using var model = new Gpt2Model(config, 0);
            int n = shape == "gpt2" ? gpt2Steps : steps;
            foreach (string method in methods)
            {
                foreach (int k in shape == "gpt2" ? gpt2Ks : ks)
                {
                    var trials = Enumerable.Range(0, k).Select(i => (
                        Train: pool.Skip(i * 7 % 300).Take(50).ToList(),
                        Options: new TrainingOptions(n, batch, 1e-3, 0, 0, Seed: i))).ToList();

                    var clock = Stopwatch.StartNew();
                    foreach (var (train, options) in trials)
                    {
                        using var m = PeftRegistry.Create(method, null);
                        new CausalLmTrainer(model, tokenizer, m).Train(train, [], options);
                    }

                    double sequential = k * n / clock.Elapsed.TotalSeconds;

                    var queue = new Queue<PackMember>(trials.Select((t, i) => new PackMember($"t{i}", PeftRegistry.Create(method, null), t.Train, [], t.Options)));
                    long tokens = 0;
                    clock.Restart();
                    var trainer = new PackedTrainer(model, tokenizer);
                    trainer.Run(k, () => queue.Count > 0 ? queue.Dequeue() : null, m =>
                    {
                        tokens += m.Report?.Tokens ?? 0;
                        m.Method.Dispose();
                    });
                    double seconds = clock.Elapsed.TotalSeconds;
                    double packed = k * n / seconds;
                    if (args.Contains("--phases")) Console.Error.WriteLine($"  {shape} {method} K={k}: {seconds:F2} s; {trainer.Timings}");
                    long d = config.Width;
                    long p = config.Layers * 12L * d * d + (long)config.VocabSize * d;
                    double flopsPerToken = 4.0 * p + 12.0 * config.Layers * meanTokens * d;
                    double gflops = tokens / seconds * flopsPerToken / 1e9;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {shape} | {method} | {k} | {sequential:F2} | {packed:F2} | {packed / sequential:F2}× | {gflops:F1} | {100 * gflops / peak:F0}% |"));
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fp32 matmul peak again: {TrainingBenchmark.MatmulPeak().Best:F1} GFLOP/s; load average {TrainingBenchmark.LoadAverage()}"));
        return 0;
    }

    /// <summary>
    /// <c>packing --drift [--steps 300]</c>: one trial trained alone and the same trial packed with three others (other data,
    /// seeds and step counts; one leaves early) on the random-init tiny base, batch 10; prints |loss alone − loss packed| at
    /// chosen steps and the largest dev-loss gap, for prefix at 1e-2 and LoRA at 1e-3 and 3e-2: how far rounding drifts.
    /// </summary>
    private static int Drift(ITextTokenizer tokenizer, string[] args)
    {
        int steps = int.Parse(TrainingBenchmark.Option(args, "--steps", "300"), CultureInfo.InvariantCulture);
        var pool = SyntheticE2e.Generate(400, 7).Select(e => new TrainingExample(e.Source, e.References[0])).ToList();
        var config = Gpt2Config.Preset("tiny", tokenizer.VocabSize);
        foreach (var (method, lr) in new[] { ("prefix", 1e-2), ("lora", 1e-3), ("lora", 3e-2) })
        {
            var options = new TrainingOptions(steps, 10, lr, 30, 50, Seed: 0);
            var train = pool.Take(50).ToList();
            var dev = pool.Skip(50).Take(15).ToList();
            using var aloneBase = new Gpt2Model(config, 3);
            using var aloneMethod = PeftRegistry.Create(method, null);
            var alone = new CausalLmTrainer(aloneBase, tokenizer, aloneMethod).Train(train, dev, options);

            using var shared = new Gpt2Model(config, 3);
            var methods = Enumerable.Range(0, 4).Select(_ => PeftRegistry.Create(method, null)).ToArray();
            var queue = new Queue<PackMember>(
            [
                new PackMember("x", methods[0], train, dev, options),
                new PackMember("o1", methods[1], pool.Skip(100).Take(50).ToList(), dev, options with { Seed = 7 }),
                new PackMember("o2", methods[2], pool.Skip(150).Take(50).ToList(), dev, options with { Seed = 8 }),
                new PackMember("o3", methods[3], pool.Skip(200).Take(50).ToList(), dev, options with { Seed = 9, MaxSteps = Math.Max(1, steps * 2 / 5) }),
            ]);
            TrainReport? packed = null;
            new PackedTrainer(shared, tokenizer).Run(4, () => queue.Count > 0 ? queue.Dequeue() : null, m =>
            {
                if (m.Id == "x") packed = m.Report;
            });
            foreach (var m in methods) m.Dispose();
            var marks = new[] { 1, 10, 50, 100, 150, 200, 250, 300 }.Where(s => s <= steps);
            string gaps = string.Join(", ", marks.Select(s => FormattableString.Invariant($"@{s} {Math.Abs(alone.StepLosses[s - 1] - packed!.StepLosses[s - 1]):0.0e0}")));
            double devGap = alone.DevLosses.Zip(packed!.DevLosses).Max(p => Math.Abs(p.First.Loss - p.Second.Loss));
            Console.WriteLine(FormattableString.Invariant($"{method} lr {lr:0.0e0}: |Δ step loss| {gaps}; largest |Δ dev loss| {devGap:0.0e0}"));
        }

        return 0;
    }

    /// <summary>Forward + backward of the plain base at B = 10 and 160 rows, to tell packing overhead from the model's own scaling.</summary>
    private static int Profile(ITextTokenizer tokenizer)
    {
        var config = Gpt2Config.Preset("tiny", tokenizer.VocabSize);
        using var model = new Gpt2Model(config, 0);
        foreach (var p in model.parameters()) p.requires_grad = false;
        using var lora = PeftRegistry.Create("lora", null);
        lora.Prepare(model, new PeftContext(0, tokenizer));
        foreach (int b in new[] { 10, 40, 160 })
        {
            foreach (var hooks in new[] { null, lora.Hooks })
            {
                using var ids = randint(0, tokenizer.VocabSize, [b, 84], dtype: ScalarType.Int64);
                double Time(Action step)
                {
                    step();
                    var clock = Stopwatch.StartNew();
                    for (int i = 0; i < 10; i++) step();
                    return clock.Elapsed.TotalMilliseconds / 10;
                }

                double forward = Time(() =>
                {
                    using var scope = NewDisposeScope();
                    using var _ = no_grad();
                    model.Forward(ids, hooks: hooks);
                });
                double both = Time(() =>
                {
                    using var scope = NewDisposeScope();
                    var logits = model.Forward(ids, hooks: hooks);
                    var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), ids.reshape(-1));
                    if (loss.requires_grad) loss.backward();
                });
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"B={b,4} hooks={(hooks is null ? "none" : "lora"),-5} forward {forward,8:F1} ms  forward+backward {both,8:F1} ms  per row {both / b:F2} ms"));
            }
        }

        return 0;
    }

    private static int[] Ints(string list) => list.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
}
