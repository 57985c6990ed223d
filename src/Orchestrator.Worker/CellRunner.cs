using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Data;
using Orchestrator.Data.Manifests;
using Orchestrator.Evaluation;
using Orchestrator.Training;
using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using TrainingPair = Orchestrator.Training.TrainingExample;

namespace Orchestrator.Worker;

/// <summary>What one cell produced: its scores, decoded outputs and provenance.</summary>
public sealed record CellOutcome(
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Outputs,
    string ProvenanceJson,
    double WallSeconds,
    long PeakMemoryBytes);

/// <summary>
/// Runs one cell end to end, on the calling thread (the worker gives it a dedicated one, off the Orleans
/// scheduler): data → subsample manifest → base model → method → train → decode → score.
/// Datasets and their tokenizers are cached per content hash, so a worker loads each once.
/// </summary>
public sealed class CellRunner
{
    private static readonly string CodeVersion =
        typeof(CellRunner).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private readonly ConcurrentDictionary<string, Lazy<(LoadedDataset Data, WordLevelTokenizer Tokenizer)>> _datasets = new(StringComparer.Ordinal);

    public CellOutcome Run(CellDefinition cell, IReadOnlyList<string> metrics, string workerId, int attempt,
        IProgress<TrainProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        TorchRuntime.EnsureAvailable();
        var (data, tokenizer) = _datasets.GetOrAdd(cell.Dataset.ContentHash, _ => new Lazy<(LoadedDataset, WordLevelTokenizer)>(() =>
        {
            var loaded = DatasetCatalog.Load(cell.Dataset);
            var corpus = loaded.TrainPool.SelectMany(e => e.References.Prepend(e.Source));
            return (loaded, WordLevelTokenizer.Build(corpus));
        })).Value;

        var manifest = SubsampleManifest.For(cell, data);
        var train = manifest.TrainIds.Select(id => data.Example(id)).Select(e => new TrainingPair(e.Source, e.Target)).ToList();
        var dev = manifest.DevIds.Select(id => data.Example(id)).Select(e => new TrainingPair(e.Source, e.Target)).ToList();

        if (cell.Model.Preset is null)
        {
            throw new NotSupportedException($"cell {cell.Label}: loading a checkpoint folder ({cell.Model.Path}) arrives with the training-engine issue; use a preset");
        }

        var config = Gpt2Config.Preset(cell.Model.Preset, tokenizer.VocabSize);
        using var model = new Gpt2Model(config, cell.Model.InitSeed);
        var method = PeftRegistry.Get(cell.Method);

        var options = new TrainingOptions(
            cell.Training.MaxSteps, cell.Training.BatchSize, cell.Training.LearningRate, cell.Training.WarmupSteps,
            cell.Training.EvalEvery, cell.Seed, cell.Training.WeightDecay);
        var report = new CausalLmTrainer(model, tokenizer, method).Train(train, dev, options, progress, ct);
        var trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

        var sources = data.Eval.Select(e => e.Source).ToList();
        var outputs = GreedyDecoder.Decode(model, tokenizer, sources, cell.Decoding.MaxNewTokens, cell.Decoding.MinNewTokens, cancellationToken: ct);
        var references = data.Eval.Select(e => e.References).ToList();

        var scores = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var metric in metrics)
        {
            foreach (var (name, value) in MetricSuite.Score(metric, outputs, references))
            {
                scores[name] = value;
            }
        }

        var wall = clock.Elapsed.TotalSeconds;
        var peak = Process.GetCurrentProcess().PeakWorkingSet64;
        var provenance = new
        {
            code_version = CodeVersion,
            cell_code_version = cell.CodeVersion,
            dataset_hash = cell.Dataset.ContentHash,
            manifest_hash = manifest.Hash,
            base_model_hash = cell.Model.ContentHash,
            model = config,
            method = cell.Method,
            method_options = cell.MethodOptions,
            trainable_parameters = trainable,
            training = cell.Training,
            decoding = cell.Decoding,
            seed = cell.Seed,
            worker = workerId,
            device = TorchRuntime.Describe(),
            attempt,
            wall_seconds = wall,
            peak_working_set_bytes = peak,
            train_examples = train.Count,
            dev_examples = dev.Count,
            eval_inputs = sources.Count,
            steps = report.Steps,
            best_step = report.BestStep,
            best_dev_loss = report.BestDevLoss,
            final_train_loss = report.StepLosses.Count > 0 ? report.StepLosses[^1] : double.NaN,
            train_seconds = report.Seconds,
        };
        return new CellOutcome(scores, outputs, JsonSerializer.Serialize(provenance), wall, peak);
    }
}
