using System.Globalization;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Results;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;

namespace Orchestrator.Hosting;

/// <summary>
/// Warnings that save a researcher a day, for <c>validate</c>, <c>run</c> and <c>results</c>: before a sweep, PEFT methods
/// on a randomly initialised base and a rough time estimate; after it, cells that kept their last step (under-trained) and
/// methods whose cells all score near zero.
/// </summary>
public static class ResearchWarnings
{
    /// <summary>
    /// Training throughput measured on the 2-core machine (docs/benchmarks.md, training step micro-benchmark): about 75
    /// GFLOP/s on bases under 10M parameters (small kernels), about 220 on GPT-2-sized ones. A token costs 6 × parameters.
    /// </summary>
    private const double SmallBaseFlops = 75e9, LargeBaseFlops = 220e9, MeasuredCores = 2;

    /// <summary>Dev evaluation and decoding, as a share of the training time (the demo: about 30%).</summary>
    private const double EvaluationOverhead = 0.3;

    /// <summary>Characters per token assumed for the estimate (byte-level BPE of a few thousand merges: 3–4).</summary>
    private const double CharactersPerToken = 3.5;

    /// <summary>Metrics (0–100, higher is better) whose values under this count as "near zero".</summary>
    private const double NearZero = 1.0;

    /// <summary>Before anything runs: PEFT methods on a randomly initialised base.</summary>
    public static IReadOnlyList<string> ForPlan(SweepPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var warnings = new List<string>();
        var onRandomBase = plan.Cells.Where(c => c.Model.Path is null).Select(c => c.Method).Distinct(StringComparer.Ordinal)
            .Where(FreezesTheBase).Order(StringComparer.Ordinal).ToList();
        if (onRandomBase.Count > 0)
        {
            var preset = plan.Cells.First(c => c.Model.Path is null).Model.Preset;
            warnings.Add($"{string.Join(", ", onRandomBase)} train on a randomly initialised base (model.preset {preset} without " +
                         "model.pretrain or model.path): they steer a frozen base, and a random one has nothing to steer, so expect " +
                         "scores near zero. Pretrain it (model.pretrain, as sweeps/demo.yaml does) or give a checkpoint (model.path).");
        }

        return warnings;
    }

    /// <summary>
    /// A rough time for the sweep's cells that have no result yet (<paramref name="toTrain"/> of them; all when null) on
    /// <paramref name="cores"/> cores: training tokens (steps × batch × mean example length) at the preset's measured speed,
    /// plus dev evaluation and decoding, plus pretraining the base (on one thread) when the spec asks for it (unless it is cached).
    /// </summary>
    public static string Estimate(SweepPlan plan, int cores, int? toTrain = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var lengths = new Dictionary<string, double>(StringComparer.Ordinal);
        double seconds = 0;
        long steps = 0;
        var cells = plan.Cells.Where(c => !c.ReusesTraining).ToList();
        double share = toTrain is { } n && plan.Cells.Count > 0 ? Math.Min(1, (double)n / plan.Cells.Count) : 1;
        int vocabulary = plan.Spec.Model.Pretrain?.VocabSize ?? 1000;
        foreach (var cell in cells)
        {
            if (!lengths.TryGetValue(cell.Dataset.ContentHash, out double tokens))
            {
                tokens = MeanTokens(cell.Dataset);
                lengths[cell.Dataset.ContentHash] = tokens;
            }

            long cellSteps = cell.Training.MaxSteps;
            steps += cellSteps;
            seconds += cellSteps * cell.Training.BatchSize * tokens / TokensPerSecond(cell.Model.Preset, vocabulary, cores);
        }

        seconds *= (1 + EvaluationOverhead) * share;
        string pretraining = "";
        if (plan.Spec.Model.Pretrain is { } pretrain && plan.Spec.Model.Preset is { } preset)
        {
            // Pretraining always runs on one torch thread (a recipe's base must not depend on the machine).
            double pre = (double)pretrain.Steps * pretrain.BatchSize * pretrain.SequenceLength / TokensPerSecond(preset, pretrain.VocabSize, 1);
            pretraining = $", plus {Duration(pre)} to pretrain the base unless it is cached";
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"estimate: about {Duration(seconds)} for {(toTrain ?? plan.Cells.Count)} cell(s) to train ({steps * share:N0} training steps) on {cores} core(s){pretraining} " +
            $"(from the preset's measured training speed on 2 cores, scaled to {cores}; a loaded machine is slower)");
    }

    /// <summary>After results: under-trained cells (best dev step = last step) and methods whose cells all score near zero.</summary>
    /// <param name="metric">The metric of the table (null: the first one the results hold).</param>
    public static IReadOnlyList<string> ForResults(IReadOnlyList<(CellDescriptor Cell, CellResultRecord? Result)> rows, string? metric = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var warnings = new List<string>();
        var succeeded = rows.Where(r => r.Result is { Status: CellStatus.Succeeded }).Select(r => (r.Cell, Result: r.Result!)).ToList();

        var lastStep = new SortedDictionary<string, (int Last, int Evaluated, int Steps)>(StringComparer.Ordinal);
        foreach (var (cell, result) in succeeded)
        {
            if (!TryTraining(result.ProvenanceJson, out int steps, out int best)) continue;
            int evalEvery = TryEvalEvery(cell.CellJson);
            if (evalEvery <= 0 || steps <= evalEvery) continue; // one dev evaluation: the last step is the only candidate
            var (last, evaluated, maxSteps) = lastStep.GetValueOrDefault(cell.Method);
            lastStep[cell.Method] = (last + (best == steps ? 1 : 0), evaluated + 1, Math.Max(maxSteps, steps));
        }

        var underTrained = lastStep.Where(kv => kv.Value.Last > 0).ToList();
        if (underTrained.Count > 0)
        {
            warnings.Add("under-trained: " + string.Join("; ", underTrained.Select(kv =>
                             $"{kv.Value.Last} of {kv.Value.Evaluated} {kv.Key} cell(s) kept their last step (max_steps {kv.Value.Steps})")) +
                         ". Their dev loss was still falling when training stopped: raise training.max_steps (or the method's own " +
                         "methods[].training.max_steps) and compare again.");
        }

        metric ??= succeeded.SelectMany(r => r.Result.Metrics.Keys).Order(StringComparer.Ordinal).FirstOrDefault(IsPercentScore);
        if (metric is not null && IsPercentScore(metric))
        {
            foreach (var group in succeeded.Where(r => r.Result.Metrics.ContainsKey(metric)).GroupBy(r => r.Cell.Method).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var values = group.Select(r => r.Result.Metrics[metric]).ToList();
                if (values.All(v => v < NearZero))
                {
                    string range = string.Create(CultureInfo.InvariantCulture, $"{values.Min():F2}–{values.Max():F2}");
                    warnings.Add($"every {group.Key} cell scores near zero: {metric} {range} over {values.Count} cell(s). " +
                                 "The method learned nothing usable here: check that the base is pretrained, the learning rate and " +
                                 "max_steps, and a few outputs (export --with-outputs).");
                }
            }
        }

        return warnings;
    }

    private static bool IsPercentScore(string metric) =>
        metric is "bleu" or "e2e_bleu" || metric.StartsWith("rouge", StringComparison.Ordinal) || metric.StartsWith("meteor", StringComparison.Ordinal);

    private static bool FreezesTheBase(string method)
    {
        try
        {
            using var created = PeftRegistry.Create(method, new Dictionary<string, string>());
            return created.Trains && !created.TrainsBaseWeights;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static double TokensPerSecond(string? preset, int vocabulary, int cores)
    {
        double parameters;
        if (preset is not null && LlamaConfig.IsPreset(preset))
        {
            parameters = LlamaConfig.Preset(preset, vocabulary).ParameterCount;
        }
        else
        {
            var config = Gpt2Config.Preset(preset ?? "gpt2", vocabulary);
            parameters = (double)(config.VocabSize + config.Positions) * config.Width
                         + config.Layers * (12.0 * config.Width * config.Width + 13.0 * config.Width);
        }
        double flops = parameters < 10e6 ? SmallBaseFlops : LargeBaseFlops;
        return flops * Math.Max(cores, 1) / MeasuredCores / (6 * parameters);
    }

    private static double MeanTokens(DatasetIdentity identity)
    {
        try
        {
            var examples = DatasetCatalog.Load(identity).TrainingExamples;
            if (examples.Count == 0) return 64;
            // The causal-LM sequence: ' ' + source + ' <|endoftext|> ' + target + ' <|endoftext|>' (two end tokens).
            return examples.Take(5000).Average(e => (e.Source.Length + e.Target.Length + 2) / CharactersPerToken + 2);
        }
        catch (Exception e) when (e is DatasetException or IOException)
        {
            return 64;
        }
    }

    private static bool TryTraining(string provenanceJson, out int steps, out int best)
    {
        steps = best = 0;
        try
        {
            using var doc = JsonDocument.Parse(provenanceJson);
            var root = doc.RootElement;
            if (root.TryGetProperty("reused_training", out var reused) && reused.ValueKind == JsonValueKind.True) return false;
            return root.TryGetProperty("steps", out var s) && s.TryGetInt32(out steps) && steps > 0
                   && root.TryGetProperty("best_step", out var b) && b.TryGetInt32(out best);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static int TryEvalEvery(string cellJson)
    {
        try
        {
            return CellDefinition.FromJson(cellJson).Training.EvalEvery;
        }
        catch (Exception e) when (e is JsonException or ArgumentException or FormatException)
        {
            return 0;
        }
    }

    private static string Duration(double seconds) => seconds switch
    {
        < 90 => string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, Math.Round(seconds)):F0} s"),
        < 5400 => string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:F0} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:F1} h"),
    };
}
