using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Orchestrator.Data.Synthetic;
using Orchestrator.Training;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>
/// <c>training [--shapes tiny,gpt2,smollm2-135m] [--methods finetune,prefix,lora] [--batch 8] [--seq 128] [--steps N] [--gpt2-steps N]</c>:
/// the fp32 matmul peak of this machine, then for each shape and method the training throughput (tokens/s), the achieved
/// FLOP/s as a fraction of that peak, and the peak resident memory. Each (shape, method) runs in a child process of this
/// program, so its peak memory is its own (VmHWM). Methods are looked up in <see cref="PeftRegistry"/> by name; an
/// unregistered one is reported as such.
/// <para>
/// FLOPs per token (counted, not measured): forward 2·P + 4·L·T·d (P = matrix parameters of the blocks and the tied output
/// layer, attention scores and mixing over T positions), backward through the activations the same again twice
/// (2·P + 8·L·T·d), and the weight gradients of the base 2·P when it trains. So full fine-tuning counts 6·P + 12·L·T·d and
/// a method with a frozen base 4·P + 12·L·T·d (its own small matrices — LoRA's A and B, prefix-tuning's MLP over a few
/// virtual tokens — are not counted).
/// </para>
/// </summary>
public static class TrainingBenchmark
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--one")
        {
            return RunOne(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture),
                int.Parse(args[5], CultureInfo.InvariantCulture));
        }

        string[] shapes = Option(args, "--shapes", "tiny,gpt2").Split(',');
        string[] methods = Option(args, "--methods", "finetune,prefix,lora").Split(',');
        int batch = int.Parse(Option(args, "--batch", "8"), CultureInfo.InvariantCulture);
        int seq = int.Parse(Option(args, "--seq", "128"), CultureInfo.InvariantCulture);
        int steps = int.Parse(Option(args, "--steps", "30"), CultureInfo.InvariantCulture);
        int gpt2Steps = int.Parse(Option(args, "--gpt2-steps", "4"), CultureInfo.InvariantCulture);

        TorchRuntime.EnsureAvailable();
        Console.WriteLine($"device: {TorchRuntime.Describe()}; {Environment.ProcessorCount} cores; batch {batch} × {seq} tokens; load average {LoadAverage()}");
        var (best, median) = MatmulPeak();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fp32 matmul peak (2048², {TorchRuntime.Threads} threads): best {best:F1} GFLOP/s, median {median:F1} GFLOP/s"));

        var rows = new List<Result>();
        foreach (string shape in shapes)
        {
            foreach (string method in methods)
            {
                if (!PeftRegistry.Names.Contains(method, StringComparer.OrdinalIgnoreCase))
                {
                    rows.Add(new Result(shape, method, "not registered", 0, 0, 0, 0, 0, 0));
                    continue;
                }

                rows.Add(RunChild(shape, method, batch, seq, IsLarge(shape) ? gpt2Steps : steps));
            }
        }

        var (bestAfter, medianAfter) = MatmulPeak();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fp32 matmul peak again after the runs: best {bestAfter:F1}, median {medianAfter:F1} GFLOP/s; load average {LoadAverage()}"));
        // The machine may be shared: the peak is the best matmul rate seen in this run (before, after, and in each child just
        // before its steps), so a busy moment during one measurement does not inflate the shares.
        double peak = rows.Select(r => r.PeakGflopPerSecond).Append(best).Append(bestAfter).Max();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak used for the shares: {peak:F1} GFLOP/s"));
        Console.WriteLine();
        Console.WriteLine("| shape | method | trainable / total params | tokens/s | GFLOP/s | % of peak | vs finetune | peak RSS |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            if (r.Status != "ok")
            {
                Console.WriteLine($"| {r.Shape} | {r.Method} | {r.Status} | | | | | |");
                continue;
            }

            var finetune = rows.FirstOrDefault(x => x.Shape == r.Shape && x.Method == "finetune" && x.Status == "ok");
            string ratio = finetune is null ? "" : string.Create(CultureInfo.InvariantCulture, $"{r.TokensPerSecond / finetune.TokensPerSecond:F2}×");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Shape} | {r.Method} | {r.Trainable:N0} / {r.Total:N0} | {r.TokensPerSecond:F0} | {r.GflopPerSecond:F1} | {100 * r.GflopPerSecond / peak:F0}% | {ratio} | {r.PeakBytes / 1048576.0:F0} MiB |"));
        }

        return rows.Any(r => r.Status is not ("ok" or "not registered")) ? 1 : 0;
    }

    private sealed record Result(string Shape, string Method, string Status, long Trainable, long Total, double TokensPerSecond, double GflopPerSecond, long PeakBytes, double SecondsPerStep, double PeakGflopPerSecond = 0);

    private static Result RunChild(string shape, string method, int batch, int seq, int steps)
    {
        // The path of this program (without the " (deleted)" Linux appends when the file was rebuilt meanwhile).
        var process = (Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program")).Replace(" (deleted)", "", StringComparison.Ordinal);
        var info = new ProcessStartInfo(process) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            info.ArgumentList.Add(typeof(TrainingBenchmark).Assembly.Location);
        }

        foreach (var a in new[] { "training", "--one", shape, method, batch.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture), steps.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        using var child = Process.Start(info)!;
        string stdout = child.StandardOutput.ReadToEnd();
        string stderr = child.StandardError.ReadToEnd();
        child.WaitForExit();
        string? line = stdout.Split('\n').LastOrDefault(l => l.StartsWith('{'));
        if (child.ExitCode != 0 || line is null)
        {
            Console.Error.WriteLine($"{shape}/{method} failed (exit {child.ExitCode}): {stderr.Trim()}");
            return new Result(shape, method, "failed", 0, 0, 0, 0, 0, 0);
        }

        var r = JsonSerializer.Deserialize<Result>(line)!;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {shape,-5} {method,-9} {r.TokensPerSecond,9:F0} tokens/s  {r.GflopPerSecond,7:F1} GFLOP/s  {r.SecondsPerStep:F3} s/step  peak {r.PeakBytes / 1048576.0:F0} MiB"));
        return r;
    }

    /// <summary>One (shape, method) in this process: prints one JSON line.</summary>
    private static int RunOne(string shape, string methodName, int batch, int seq, int steps)
    {
        TorchRuntime.EnsureAvailable();
        // GPT-2 and Llama shapes at their own vocabulary (the small presets at 1024); the ids are random below that.
        CausalLm created = LlamaConfig.IsPreset(shape)
            ? new LlamaModel(LlamaConfig.Preset(shape, IsLarge(shape) ? null : 1024), 0)
            : new Gpt2Model(Gpt2Config.Preset(shape, shape == "gpt2" ? 50257 : 1024), 0);
        using var model = created;
        ModelShape config = model.Shape;
        var tokenizer = BpeTrainer.Train(PretrainCorpus.Generate(2000, 0), 1024);
        using IPeftMethod method = PeftRegistry.Create(methodName, null);
        var trainable = method.Prepare(model, new PeftContext(0, tokenizer));
        long total = model.parameters().Sum(p => p.numel());
        long trainableCount = trainable.Sum(p => p.numel());
        int virtualTokens = method.VirtualTokens();
        int t = Math.Min(seq, config.Positions - virtualTokens);

        // Matrix parameters that every token goes through: the blocks' attention projections (q and o d×d, k and v d×kv)
        // and MLP (GPT-2: two d×f; Llama: gate, up and down), and the output layer.
        long d = config.Width;
        long blockMatrices = config.Layers * (2L * d * d + 2L * d * config.KeyValueWidth + (config.IsLlama ? 3L : 2L) * d * config.InnerWidth);
        long output = (long)config.VocabSize * d;
        long p = blockMatrices + output;
        long attention = 4L * config.Layers * (t + virtualTokens) * d;
        bool baseTrains = method.TrainsBaseWeights;
        double flopsPerToken = 2.0 * p + attention   // forward
            + 2.0 * p + 2.0 * attention               // backward through the activations
            + (baseTrains ? 2.0 * p : 0);             // weight gradients of the base (a method's own small matrices are not counted)

        var generator = new Generator(1);
        using var ids = randint(0, tokenizer.VocabSize, [batch, t], generator: generator, dtype: ScalarType.Int64).DetachFromDisposeScope();
        using var optimizer = optim.AdamW(trainable, 1e-4);
        model.train();
        method.TrainedModel?.train();
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = PeftForward.Logits(method, model, ids);
            var loss = nn.functional.cross_entropy(logits.narrow(1, 0, t - 1).reshape(-1, logits.shape[2]), ids.narrow(1, 1, t - 1).reshape(-1));
            loss.backward();
            optimizer.step();
        }

        Step();
        Step();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step();
        double seconds = clock.Elapsed.TotalSeconds;
        long peakResident = PeakResident();
        double matmulPeak = MatmulPeak().Best; // right after the steps, for the run's best peak (after reading the memory peak)
        double tokensPerSecond = (double)batch * t * steps / seconds;
        var result = new Result(shape, methodName, "ok", trainableCount, total, tokensPerSecond, tokensPerSecond * flopsPerToken / 1e9, peakResident, seconds / steps, matmulPeak);
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>The ~100M shapes (gpt2, smollm2-135m, …) take <c>--gpt2-steps</c>; the small presets take <c>--steps</c>.</summary>
    private static bool IsLarge(string shape) => shape is not ("tiny" or "test" or "small" or "llama-tiny");

    /// <summary>Best and median GFLOP/s of 2048×2048 fp32 matmuls.</summary>
    internal static (double Best, double Median) MatmulPeak()
    {
        const int n = 2048;
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var a = randn([n, n], generator: g);
        var b = randn([n, n], generator: g);
        for (int i = 0; i < 3; i++) a.matmul(b).Dispose();
        var rates = new List<double>();
        for (int i = 0; i < 15; i++)
        {
            var clock = Stopwatch.StartNew();
            using var c = a.matmul(b);
            _ = c.sum().item<float>();
            rates.Add(2.0 * n * n * n / clock.Elapsed.TotalSeconds / 1e9);
        }

        rates.Sort();
        return (rates[^1], rates[rates.Count / 2]);
    }

    internal static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>Peak resident set of this process (VmHWM), in bytes; the current working set where /proc is missing.</summary>
    private static long PeakResident()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            if (line is not null)
            {
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }

        return Environment.WorkingSet;
    }

    internal static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
